"""A batched stage's MLflow logging in a process of its own.

Importing MLflow takes ~2 s, as long as the rest of a small run (one changed series: its fit,
pandas' and scikit-learn's imports). In a second process it is paid on another core while the
stage fits, and the series' records are logged as they arrive. Two owners:
- `modelops-ci run` starts a `LoggingService` as the first batched stage that will run is about
  to start (a no-op run starts none). A stage hands its records to it (`ServiceLogger`, over a
  local socket in `run`'s private scratch folder, with a random key) and exits without waiting, so
  the records still being logged (300 child runs take ~6 s of CPU) overlap DVC's commit and push
  of the stage's outputs. `run` waits for all of them at the end: a logging failure is `run`'s
  failure, with MLflow's message, and the outputs DVC has committed stay (the runs are a record
  beside DVC and git).
- A stage run on its own (`dvc repro`, `modelops-ci step batch`) starts the same service itself
  (`OwnLogger`) and waits for it before it exits: a logging failure is the stage's failure.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from modelops_ci.ml.tracking import Tracked

_DONE = "done"
WAIT_SECONDS = 600  # for the logger to finish after the last record (a slow tracking server)
SERVICE_ENV = "MODELOPS_MLFLOW_LOGGER"  # the socket of `run`'s LoggingService, for its stages
KEY_ENV = "MODELOPS_MLFLOW_LOGGER_KEY"  # its key (hex): only a process `run` started knows it
CONNECT_SECONDS = 30  # for the service's socket to appear


class StageLogger(Protocol):
    """Where a batched stage sends its MLflow records."""

    def log_series(self, record: dict[str, Any]) -> None: ...

    def log_family(self, metrics: dict[str, Any]) -> None: ...

    def __enter__(self) -> StageLogger: ...

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None: ...


def stage_logger(tracked: Tracked) -> StageLogger:
    """The logger of `run` that started this stage, or one of the stage's own."""
    address, key = os.environ.get(SERVICE_ENV), os.environ.get(KEY_ENV)
    if address and key:
        return ServiceLogger(address, bytes.fromhex(key), tracked)
    return OwnLogger(tracked)


class OwnLogger:
    """A stage's own logging service (a stage run alone): the same service and hand-over as under
    `run`, in a scratch folder of the stage's, waited for when the stage leaves the `with` block."""

    def __init__(self, tracked: Tracked) -> None:
        self._stack = contextlib.ExitStack()
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="modelops-mlflow-")))
        self._service = self._stack.enter_context(LoggingService(folder))
        address, key = self._service.environment[SERVICE_ENV], self._service.environment[KEY_ENV]
        self._logger = ServiceLogger(address, bytes.fromhex(key), tracked)

    def log_series(self, record: dict[str, Any]) -> None:
        self._logger.log_series(record)

    def log_family(self, metrics: dict[str, Any]) -> None:
        self._logger.log_family(metrics)

    def __enter__(self) -> OwnLogger:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        with self._stack:
            self._logger.__exit__(kind)
            try:
                self._service.finish()
            except Exception:
                if kind is None:  # a logging failure is the stage's, unless it already failed
                    raise


def _failure(answer: tuple[Any, ...]) -> Exception:
    _, message, user = answer
    if user:
        return UserError(message)
    return RuntimeError(f"MLflow logging failed: {message}")


def _logged(tracked: Tracked, pipe: Connection) -> tuple[Any, ...]:
    from modelops_ci.errors import ModelopsError
    from modelops_ci.ml.tracking import FamilyRun

    _commit_without_waiting_for_the_disk()
    try:
        # MLflow's ~2 s import and the store's set-up, while the stage reads the panel and keys and
        # fits the series: the first record is logged as soon as it arrives.
        with FamilyRun(tracked) as run:
            what, payload = pipe.recv()
            while True:
                if what == "series":
                    run.log_series(payload)
                elif what == "family":
                    run.log_family(payload)
                else:
                    if not payload:
                        raise _StageFailed
                    break
                what, payload = pipe.recv()
    except (_StageFailed, EOFError):  # the stage stopped (or was killed): its parent run ended FAILED
        pass
    except ModelopsError as exc:
        return ("error", str(exc), True)
    except OSError as exc:  # the store's folder or file: where MLFLOW_TRACKING_URI (or the default) points
        from modelops_ci.ml.tracking import tracking_uri

        return ("error", f"MLflow's store {tracking_uri(tracked.root)} cannot be written ({exc.strerror or exc}): "
                         "point MLFLOW_TRACKING_URI at a writable place or a tracking server", True)
    except Exception:  # reported to the stage, which turns it into its own failure
        return ("error", traceback.format_exc(limit=5), False)
    return ("ok",)


def _commit_without_waiting_for_the_disk() -> None:
    """SQLite stores (the default) in WAL mode with synchronous=NORMAL, for this process's
    connections only: a commit no longer waits for the disk (each child run is ~7 commits), and
    still survives a crash of the process; only a power loss can take the last ones. The runs are
    a record beside DVC and git, which hold the models and verdicts."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def pragmas(connection: object, _: object) -> None:
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", pragmas)


class _StageFailed(Exception):
    """The stage stopped: the parent run ends FAILED (FamilyRun's exit)."""


# -- `run`'s logging service ------------------------------------------------------------------------


class LoggingService:
    """`run`'s MLflow logger for the batched stages it runs (see the module's doc). Use as a
    context: `environment` is what a stage needs to reach it; `finish` waits for every record
    handed over and raises the first failure; leaving the block stops the process."""

    def __init__(self, folder: Path) -> None:
        address, key = str(folder / "mlflow.sock"), os.urandom(32)
        context = multiprocessing.get_context("spawn")
        self._ours, theirs = context.Pipe()
        self._process = context.Process(target=_service, args=(address, key, theirs), daemon=True,
                                        name="modelops-mlflow")
        self._process.start()
        theirs.close()
        self.environment = {SERVICE_ENV: address, KEY_ENV: key.hex()}

    def finish(self) -> None:
        try:
            self._ours.send(_DONE)
            answers = self._ours.recv() if self._ours.poll(WAIT_SECONDS) else [("error", "no answer", False)]
        except (EOFError, OSError, BrokenPipeError):
            answers = [("error", f"the MLflow logger stopped (exit code {self._process.exitcode})", False)]
        failed = next((a for a in answers if a[0] != "ok"), None)
        if failed:
            raise _failure(failed)

    def __enter__(self) -> LoggingService:
        return self

    def __exit__(self, *_: object) -> None:
        self._process.join(timeout=0.5)  # it ends itself after `finish`
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)


class ServiceLogger:
    """A stage's records handed to `run`'s LoggingService: sent, never waited for. It connects with
    the first record, so a stage that runs no series logs nothing."""

    def __init__(self, address: str, key: bytes, tracked: Tracked) -> None:
        self._address, self._key, self._tracked = address, key, tracked
        self._connection: Connection | None = None
        self._gone = False

    def _send(self, message: tuple[str, Any]) -> None:

        if self._gone:
            return
        try:
            if self._connection is None:
                self._connection = _connected(self._address, self._key)
                self._connection.send(("begin", self._tracked))
            self._connection.send(message)
        except OSError:  # the logger stopped on an error of its own: `run` reports it, the series go on
            self._gone = True

    def log_series(self, record: dict[str, Any]) -> None:
        self._send(("series", record))

    def log_family(self, metrics: dict[str, Any]) -> None:
        if self._connection is not None:
            self._send(("family", metrics))

    def __enter__(self) -> ServiceLogger:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._connection is not None:
            self._send((_DONE, kind is None))
            self._connection.close()


def _connected(address: str, key: bytes) -> Connection:
    """A connection to the service, which `run` started just before this stage: its socket appears
    within a second of that (a new interpreter's start), long before a stage has a series done."""
    from multiprocessing.connection import Client

    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return Client(address, family="AF_UNIX", authkey=key)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _service(address: str, key: bytes, control: Connection) -> None:
    """The service: one stage's connection after another (DVC runs one stage at a time), each
    logged as one FamilyRun, until `run` says it is done; then every connection's answer."""
    from multiprocessing.connection import Client, Listener

    _commit_without_waiting_for_the_disk()
    listener = Listener(address, family="AF_UNIX", authkey=key)
    answers: list[tuple[Any, ...]] = []
    # MLflow's ~2 s import while the stage reads its panel; not in this thread, which answers `run`
    # at once when no stage connected. The only import of it: the stages are logged once it is done
    # (MLflow's modules import each other in a circle, which two threads importing at once break).
    importing = threading.Thread(target=importlib.import_module, args=("mlflow",), daemon=True)
    importing.start()
    serving = threading.Thread(target=_serve_stages, args=(listener, answers, importing), daemon=True)
    serving.start()
    try:
        control.recv()
    except EOFError:
        os._exit(0)  # `run` is gone: nobody to answer
    # The stages DVC ran have exited; the last one's records may still be being logged. A blocked
    # accept() is not woken by closing its socket: a last connection of our own ends the loop.
    with Client(address, family="AF_UNIX", authkey=key) as last:
        last.send((_DONE, None))
    serving.join()
    listener.close()
    try:
        control.send(answers or [("ok",)])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _serve_stages(listener: Any, answers: list[tuple[Any, ...]], importing: threading.Thread) -> None:
    while True:
        try:
            connection = listener.accept()
        except multiprocessing.AuthenticationError:  # not one of `run`'s stages: not heard
            continue
        with connection:
            try:
                what, tracked = connection.recv()
            except (EOFError, OSError):
                continue  # a stage that connected and died before saying anything
            if what == _DONE:
                return
            if what == "begin":
                importing.join()
                answers.append(_logged(tracked, connection))
