"""One bad pipeline does not stop the others (issue 11, item 10): `run --keep-going` and `ci` run every
pipeline they can, report each failure (pipeline, stage, the step's message) and exit non-zero at the end.

One repo serves the module: `sales` names a target column its data lacks (its ingest exits 2), `loans`
is fine; DVC runs `sales` first, so a fail-fast run never reaches `loans`. `run --all` (fail-fast) runs
first, then `run --all --keep-going`, then `ci`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import Result, run_exe
from tests.helpers.repos import make_ml_repo

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

MESSAGE = "pipelines/sales.yaml:10: spec.data.target.column: column 'unitz' is not in the data"
REPORTED = f"  sales:ingest (exit 2): {MESSAGE}"
LOANS = ["loans:ingest", "loans:split", "loans:train", "loans:evaluate"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.update({"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    repo = make_ml_repo(tmp_path_factory.mktemp("keep_going") / "repo")
    spec = repo / "pipelines" / "sales.yaml"
    spec.write_text(spec.read_text().replace("column: units", "column: unitz"))
    assert run_exe("compile", cwd=repo).exit_code == 0
    return repo


@pytest.fixture(scope="module")
def fail_fast(broken: Path) -> Result:
    return run_exe("run", "--all", cwd=broken)


@pytest.fixture(scope="module")
def kept_going(broken: Path, fail_fast: Result) -> Result:
    return run_exe("run", "--all", "--keep-going", cwd=broken)


def test_without_keep_going_the_first_failure_stops_the_run(broken: Path, fail_fast: Result) -> None:
    assert fail_fast.exit_code == 2, fail_fast.stdout + fail_fast.stderr
    assert MESSAGE in fail_fast.stderr
    assert not (broken / "models/loans/model.skops").exists(), "loans comes after sales: it never ran"


def test_keep_going_runs_every_other_pipeline(broken: Path, kept_going: Result) -> None:
    assert (broken / "models/loans/model.skops").is_file()
    assert (broken / "reports/loans/metrics.json").is_file()
    assert not (broken / "data/sales/dataset.parquet").exists()
    ran = [line.split()[0] for line in kept_going.stdout.splitlines() if line.startswith("loans:")]
    assert ran == LOANS, kept_going.stdout


def test_keep_going_reports_each_failure_and_exits_2_for_a_user_error(kept_going: Result) -> None:
    assert kept_going.exit_code == 2, kept_going.stdout + kept_going.stderr
    lines = kept_going.stderr.splitlines()
    reported = [i for i, line in enumerate(lines) if line.startswith(REPORTED)]
    assert len(reported) == 1, kept_going.stderr
    assert lines[reported[0] - 1].startswith("1 stage failed"), kept_going.stderr
    assert "skipped: sales:split, sales:train, sales:evaluate" in kept_going.stderr
    assert "Traceback" not in kept_going.stderr


def test_ci_keeps_going_by_default(broken: Path, kept_going: Result) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    result = run_exe("ci", cwd=broken, env=env)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith(REPORTED)], result.stderr
    shown = [line.split()[:2] for line in result.stdout.splitlines() if line.startswith("loans:")]
    assert shown == [[stage, "cached"] for stage in LOANS], result.stdout
