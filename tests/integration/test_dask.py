"""A batched family's series on a Dask cluster (MODELOPS_DASK_SCHEDULER, steps/parallel.py): a real
`distributed.LocalCluster` of two worker processes on 127.0.0.1, started once for this module. The
series must run on its workers and give the same bytes as in this process and on loky's workers."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.steps import parallel
from tests.helpers.cli import run_cli
from tests.helpers.family import panel_csv, panel_rows
from tests.helpers.repos import write

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

FAMILY = "panel"
SERIES = ("north", "south", "east", "west", "centre")
MONTHS = 48
OUTPUTS = ("models", "reports")

PIPELINE = f"""\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: {FAMILY}
  labels: {{domain: demand}}
spec:
  task: forecast
  batch: true
  data:
    source: {{path: data/panel.csv}}
    time: month
    target: {{column: units}}
    features: {{drop: [region]}}
  split: {{kind: temporal, test_periods: 6}}
  model: {{estimator: sklearn.linear_model.Ridge, params: {{alpha: 1.0}}, lags: [1, 12], season: 12}}
  metrics: [mae, smape, mase]
  foreach: [{", ".join(SERIES)}]
  do:
    data:
      filter: {{region: "${{item}}"}}
"""

POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata:
  name: demand
spec:
  selector: {labels: {domain: demand}}
  gates:
    performance:
      confidence: 0.9
      metrics: {mase: {max: 3.0}}
  stages: [dev, production]
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The family compiled, never run; each test runs a copy."""
    repo = tmp_path_factory.mktemp("dask") / "template"
    write(repo, "data/panel.csv", panel_csv(panel_rows(SERIES, MONTHS, start=2020), "region,month,units"))
    write(repo, f"pipelines/{FAMILY}.yaml", PIPELINE)
    write(repo, "policies/demand.yaml", POLICY)
    done = run_cli("compile", cwd=repo)
    assert done.exit_code == 0, done.stderr
    return repo


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    # Its worker processes inherit this process's environment, NumPy's portable kernels included
    # (tests/conftest.py pins them), as `dask worker` would when started the README's way.
    with LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as running:
        yield running


@pytest.fixture
def tracking(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One MLflow store for the module's runs: each new store would cost its schema's migration."""
    store = tmp_path_factory.getbasetemp() / "dask-mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")


def run_family(compiled: Path, repo: Path) -> dict[str, bytes]:
    """Run the family's stage in a fresh copy of `compiled`; every output file's bytes by path."""
    shutil.copytree(compiled, repo)
    done = run_cli("step", "batch", FAMILY, cwd=repo)
    assert done.exit_code == 0, done.stderr
    assert f"series={len(SERIES)}, ran={len(SERIES)}" in done.stdout
    files = [p for folder in OUTPUTS for p in sorted((repo / folder).rglob("*")) if p.is_file()]
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in files}


@pytest.mark.usefixtures("tracking")
def test_the_series_run_on_the_cluster_and_give_the_bytes_of_a_serial_run(
        compiled: Path, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(loky against serial: tests/integration/test_batch.py.)"""
    from distributed import Client, get_task_stream

    monkeypatch.setenv(parallel.JOBS_ENV, "1")
    serial = run_family(compiled, tmp_path / "serial")

    monkeypatch.setenv(parallel.DASK_ENV, cluster.scheduler_address)
    with Client(cluster) as watcher, get_task_stream(client=watcher) as tasks:
        on_dask = run_family(compiled, tmp_path / "dask")
    ran = [t for t in tasks.data if t["key"].startswith("batch_of_run_series_")]
    calls = sum(int(t["key"].split("_")[-2]) for t in ran)  # joblib's key: batch_of_run_series_N_calls-<id>
    assert calls == len(SERIES)
    assert {t["worker"] for t in ran} <= set(cluster.scheduler_info["workers"])

    assert len(serial) == len(SERIES) * 2 + 2  # per series a model and its record; the family's two
    assert on_dask == serial


@pytest.mark.parametrize("address", ["scheduler.example", "http://127.0.0.1:8786"])
def test_a_malformed_scheduler_address_is_a_user_error(compiled: Path, tmp_path: Path, address: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(compiled, tmp_path / "repo")
    monkeypatch.setenv(parallel.DASK_ENV, address)
    done = run_cli("step", "batch", FAMILY, cwd=tmp_path / "repo")
    assert done.exit_code == 2
    assert f"{parallel.DASK_ENV}={address!r}: not a scheduler address" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_scheduler_is_a_user_error_within_the_connect_timeout(
        compiled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a free port on loopback that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    shutil.copytree(compiled, tmp_path / "repo")
    monkeypatch.setenv(parallel.DASK_ENV, address)
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1)
    started = time.monotonic()
    done = run_cli("step", "batch", FAMILY, cwd=tmp_path / "repo")
    assert done.exit_code == 2
    assert f"{parallel.DASK_ENV}={address!r}: no Dask scheduler answered within 1 s" in done.stderr
    # A bound, not a race: distributed's own default would wait 30 s; this waits about 1 s.
    assert time.monotonic() - started < 20


AVX512 = frozenset({"avx512f", "avx2", "fma"})


def test_a_worker_without_the_portable_kernels_is_told_what_to_set() -> None:
    assert parallel.unpinned({}, "x86_64", AVX512) == {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                                                       "OPENBLAS_CORETYPE": "Haswell"}
    pinned = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"}
    assert parallel.unpinned(pinned, "x86_64", AVX512) == {}
    assert parallel.unpinned({"OPENBLAS_CORETYPE": "SkylakeX"}, "x86_64", AVX512) == {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}  # a value set by hand is a choice
    assert parallel.unpinned({}, "aarch64", frozenset()) == {}
