"""Real servers on loopback, started and stopped by the tests: moto's S3 (a thread of this
process) and an `mlflow server` (a process group of its own, SQLite behind it, artifacts proxied).

    with moto_s3() as s3:                          # s3.endpoint: http://127.0.0.1:PORT
        s3.client().create_bucket(Bucket="models")
    with mlflow_server(tmp_path / "mlflow") as server:
        ...                                        # the process starts: do other work meanwhile
        server.wait()                              # then poll /health until it answers
        ... MLFLOW_TRACKING_URI=server.uri

Both bind 127.0.0.1 only. moto takes the port the kernel picks as it binds; `mlflow server` is
given a port that was free a moment before (should anything take it meanwhile, the server exits
and `wait()` fails with its log, which says so).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.offline import QUIET_ENV
from tests.helpers.paths import BIN

LOOPBACK = "127.0.0.1"
# seconds: it answers after ~6 s alone, after more under a full suite on 2 cores; only a broken one takes this long
READY_WITHIN = 120.0
POLL_EVERY = 0.1
LOG_TAIL_LINES = 30
# moto accepts any credentials; these are the ones the tests hand boto3, DVC and the CLI.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001", "AWS_SECRET_ACCESS_KEY": "moto/test+Secret0Key0never0printed",
           "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class S3Server:
    """moto's S3 at `endpoint`."""

    endpoint: str

    def client(self) -> Any:
        """A boto3 S3 client for this server, with the test credentials (AWS_ENV)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in `bucket` under `prefix`."""
        keys = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Server]:
    """moto's S3 server in a thread of this process, on a loopback port the kernel picks."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()  # returns once the socket is bound and listening
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@dataclass
class MlflowServer:
    """A running `mlflow server`: its URI, its SQLite store, the folder its proxied artifacts land
    in, and its log."""

    uri: str
    store: Path
    artifacts: Path
    log: Path
    process: subprocess.Popen[bytes]
    ready: bool = False

    def wait(self, within: float = READY_WITHIN) -> MlflowServer:
        """Poll /health until it answers 200; fail with the log's tail if the server exits or
        does not answer within `within` seconds."""
        deadline = time.monotonic() + within
        while not self.ready:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer {self.uri}/health within {within:.0f} s:\n"
                                   f"{self.log_tail()}")
            self.ready = _answers(f"{self.uri}/health")
            if not self.ready:
                time.sleep(POLL_EVERY)
        return self

    def log_tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[MlflowServer]:
    """Start `mlflow server` on loopback with a SQLite store and proxied artifacts, all in `folder`;
    kill its whole process group (uvicorn is its child) on exit. It is not waited for: call
    `wait()` before the first request."""
    folder.mkdir(parents=True, exist_ok=True)
    store, artifacts, log = folder / "mlflow.db", folder / "artifacts", folder / "server.log"
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--host", LOOPBACK, "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{store}",
               "--serve-artifacts", "--artifacts-destination", str(artifacts)]
    # No job runner: a second process importing MLflow beside the server doubles its start-up on 2 cores.
    env = {**os.environ, **QUIET_ENV, "HOME": str(folder), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield MlflowServer(f"http://{LOOPBACK}:{port}", store, artifacts, log, process)
    finally:
        _stop_group(process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the whole process group at once and reap the leader: the store is a throwaway file, so
    nothing is lost, and a graceful uvicorn shutdown would cost the suite 2 to 4 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class ModelServer:
    """A running `modelops-ci serve`: its base URL, its prediction log and its own log."""

    url: str
    log: Path
    output: Path
    process: subprocess.Popen[bytes]

    def wait(self, path: str = "/healthz", within: float = READY_WITHIN) -> ModelServer:
        """Poll `path` until it answers 200; fail with the server's output if it exits first."""
        deadline = time.monotonic() + within
        while not _answers(f"{self.url}{path}"):
            if self.process.poll() is not None:
                raise RuntimeError(f"modelops-ci serve exited with {self.process.returncode}:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"modelops-ci serve did not answer {path} within {within:.0f} s:\n"
                                   f"{self.output_tail()}")
            time.sleep(POLL_EVERY)
        return self

    def output_tail(self) -> str:
        lines = self.output.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing gets to flush or close."""
        _stop_group(self.process)


@contextlib.contextmanager
def model_server(repo: Path, stage: str, log: Path, *extra: str) -> Iterator[ModelServer]:
    """Start `modelops-ci serve --stage STAGE` on a loopback port for `repo`, logging to `log`;
    killed on exit. Not waited for: call `wait()`."""
    port = free_port()
    output = log.with_suffix(".out")
    command = [str(BIN / "modelops-ci"), "serve", "--stage", stage, "--host", LOOPBACK, "--port", str(port),
               "--log", str(log), "-C", str(repo), *extra]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, env={**os.environ, **QUIET_ENV}, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield ModelServer(f"http://{LOOPBACK}:{port}", log, output, process)
    finally:
        _stop_group(process)
