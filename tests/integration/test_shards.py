"""Only what changed, across a GitHub Actions matrix (issue 12): ci-matrix.yml run end to end by the
local workflow runner on a small family (6 series, a CSV panel, a DVC remote in a shared folder).

main ran the family once and pushed its outputs; the next commit changes three series' rows. The
plan job counts those three, three shard jobs compute one each and push it, and the merge job puts
them in place and writes the family's report and lock without computing any series again. Without
one shard's artifact, the merge refuses, names the shard, and leaves every series as it was.
The run is made once per module (it takes about a minute) and read by the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.commands.init import DVC_CONFIG
from tests.helpers.cli import run_exe
from tests.helpers.family import panel_csv, panel_rows
from tests.helpers.github_server import REPO, FakeGitHub
from tests.helpers.paths import PROJECT
from tests.helpers.repos import git, write
from tests.helpers.workflow_runner import Event, JobResult, WorkflowRun, dispatch_event

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

MATRIX = PROJECT / ".github" / "workflows" / "ci-matrix.yml"
SERIES = ("a", "b", "c", "d", "e", "f")
CHANGED = ("b", "d", "f")
SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: demand
spec:
  task: forecast
  batch: true
  data:
    source: {path: data/panel.csv}
    time: month
    target: {column: value}
    features: {drop: [series]}
  split: {kind: temporal, test_periods: 6}
  model: {estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}, lags: [1, 12], season: 12}
  metrics: [mae, smape, mase]
  foreach: [a, b, c, d, e, f]
  do:
    data:
      filter:
        series: ${item}
"""


def panel(shift: tuple[str, ...] = ()) -> str:
    """Four years of monthly values per series; the `shift` series' Junes are 5 higher."""
    rows = panel_rows(SERIES, 48, start=2020)
    for row in rows:
        if row[0] in shift and row[1][5:7] == "06":
            row[2] = f"{float(row[2]) + 5:.3f}"
    return panel_csv(rows)


def _build(root: Path) -> Path:
    """main: the family run and pushed to the shared remote, then a commit changing three series."""
    work, remote = root / "work", root / "dvc-remote"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=work, check=True)
    write(work, ".dvc/config", DVC_CONFIG)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "modify", "local", "url", str(remote)], cwd=work, check=True)
    write(work, ".gitignore", ".modelops/\n")
    write(work, "data/panel.csv", panel())
    write(work, "pipelines/demand.yaml", SPEC)
    assert run_exe("compile", cwd=work).exit_code == 0
    ran = run_exe("run", "--all", cwd=work)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    git("add", "-A", cwd=work)
    git("commit", "-qm", "demand: six series, run", cwd=work)
    write(work, "data/panel.csv", panel(shift=CHANGED))
    git("commit", "-qam", "new figures for three series", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "origin.git"), cwd=root)
    return root / "origin.git"


@dataclass
class MatrixRun:
    origin: Path
    run: WorkflowRun
    jobs: dict[str, JobResult]
    tracking: Path


def computed(tracking: Path) -> list[str]:
    """The series of every MLflow child run: one per series computed, by any job."""
    with contextlib.closing(sqlite3.connect(tracking)) as db:
        rows = db.execute("SELECT value FROM tags WHERE key = 'modelops.series'").fetchall()
    return sorted(str(value) for (value,) in rows)


@pytest.fixture(scope="module")
def _cache() -> dict[str, MatrixRun]:
    return {}


@pytest.fixture
def matrix_run(_cache: dict[str, MatrixRun], tmp_path_factory: pytest.TempPathFactory,
               monkeypatch: pytest.MonkeyPatch) -> MatrixRun:
    """ci-matrix.yml dispatched on main, one shard per changed series (SERIES_PER_SHARD: 1). Every
    job logs to one MLflow store, as to a tracking server: it counts the series each computed."""
    if "run" not in _cache:
        root = tmp_path_factory.mktemp("matrix")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        origin = _build(root)
        workflow = write(root, "ci-matrix.yml", MATRIX.read_text().replace('SERIES_PER_SHARD: "50"',
                                                                            'SERIES_PER_SHARD: "1"'))
        with FakeGitHub() as server:
            server.add_repo(REPO)
            event = dispatch_event(server, REPO, origin, {}, workflow=".github/workflows/ci-matrix.yml")
            run = WorkflowRun(workflow, origin=origin, event=event, server=server, root=root / "run")
            _cache["run"] = MatrixRun(origin, run, run.run(), root / "mlflow.db")
    return _cache["run"]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _record(workspace: Path, series: str) -> dict[str, Any]:
    return _json(workspace / f"reports/demand/series/demand-{series}/series.json")  # type: ignore[no-any-return]


def _three_shards_each_compute_their_series_once_and_the_merge_computes_none(matrix_run: MatrixRun) -> None:
    jobs = matrix_run.jobs
    plan = jobs["plan"]
    assert plan.result == "success", plan.log()
    assert json.loads(plan.outputs["matrix"]) == {"shard": [0, 1, 2], "of": [3]}
    assert "changed: demand: 3 of 6 series: demand-b, demand-d, demand-f" in plan.step("plan").stderr
    shard = jobs["shard"]
    assert shard.result == "success", "\n".join(r.log() for r in shard.runs)
    assert [r.matrix for r in shard.runs] == [{"shard": i, "of": 3} for i in range(3)]
    said = [r.step("Compute this shard").stdout for r in shard.runs]
    for index, (text, series) in enumerate(zip(said, CHANGED, strict=True)):
        assert f"shard {index}/3: demand: computed 1 series (demand-{series}); pushed " \
               f".modelops/shards/demand/{index}.dvc" in text, text
    merge = jobs["merge"]
    assert merge.result == "success", merge.log()
    out = merge.step("gates").stdout
    assert "merge: 3 series from 3 of 3 shard(s) in place" in out, out
    assert "demand batch: series=6, ran=0, verdict=pass" in out, out  # the stage recomputed no series
    # main's run computed the six series, the shards the three changed ones, the merge none.
    assert computed(matrix_run.tracking) == sorted([f"demand-{s}" for s in SERIES + CHANGED])
    # Every series is in the family's report; the three changed ones with the keys their shard computed.
    workspace = merge.workspace
    report = _json(workspace / "reports/demand/gates.json")
    assert sorted(s["series"] for s in report["series"]) == [f"demand-{s}" for s in SERIES]
    for index, series in enumerate(CHANGED):
        shard_workspace = shard.runs[index].workspace
        manifest = _json(shard_workspace / f".modelops/shards/demand/{index}/manifest.json")
        assert manifest["series"] == {f"demand-{series}": _record(workspace, series)["key"]}
        assert _record(workspace, series) == _record(shard_workspace, series)
    # The lock is this commit's: it records the changed panel, and the report it made.
    lock = (workspace / "compiled/demand/dvc.lock").read_text()
    assert hashlib.md5((workspace / "data/panel.csv").read_bytes()).hexdigest() in lock
    assert hashlib.md5((workspace / "reports/demand/gates.json").read_bytes()).hexdigest() in lock
    uploaded = matrix_run.run.artifacts / "modelops-reports"
    assert (uploaded / "compiled/demand/dvc.lock").read_text() == lock


def _a_missing_shard_stops_the_merge_which_names_it_and_merges_nothing(matrix_run: MatrixRun) -> None:
    run, jobs = matrix_run.run, matrix_run.jobs
    keep = run.root / "kept-shard-1"
    shutil.move(run.artifacts / "modelops-shard-1", keep)
    try:
        merge = run.run_job("merge", {"plan": jobs["plan"], "shard": jobs["shard"]})
    finally:
        shutil.move(keep, run.artifacts / "modelops-shard-1")
    assert merge.result == "failure"
    step = merge.step("gates")
    assert step.returncode == 2, merge.log()
    assert "shard 1/3 left no results for demand (expected series demand-d)" in step.stderr, step.stderr
    assert "nothing was merged" in step.stderr
    # The other shards' series were not copied in: every series holds what main's run pushed.
    before = {s: _record(jobs["shard"].runs[0].workspace, s)["key"] for s in SERIES if s != "b"}
    assert {s: _record(merge.workspace, s)["key"] for s in SERIES if s != "b"} == before
    assert _record(merge.workspace, "b")["key"] != _record(jobs["merge"].workspace, "b")["key"]
    assert git("status", "--porcelain", cwd=merge.workspace) == ""


# -- the runner's matrix, on a synthetic workflow ------------------------------------------------------

SYNTHETIC = """\
on: push
jobs:
  plan:
    runs-on: ubuntu-latest
    outputs: {matrix: "${{ steps.plan.outputs.matrix }}"}
    steps:
      - id: plan
        run: echo 'matrix={"shard":[0,1,2],"of":[3]}' >> "$GITHUB_OUTPUT"
  each:
    needs: plan
    runs-on: ubuntu-latest
    strategy:
      fail-fast: FAIL_FAST
      matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}
    steps:
      - env: {SHARD: "${{ matrix.shard }}", OF: "${{ matrix.of }}", INDEX: "${{ strategy.job-index }}"}
        run: |
          echo "$SHARD/$OF at $INDEX" > seen.txt
          test "$SHARD" != 1
  after:
    needs: each
    if: ${{ !cancelled() }}
    runs-on: ubuntu-latest
    steps:
      - env: {RESULT: "${{ needs.each.result }}"}
        run: test "$RESULT" = failure
"""


@pytest.mark.parametrize(("fail_fast", "results"), [
    ("true", ["success", "failure", "cancelled"]), ("false", ["success", "failure", "success"])])
def test_the_runner_runs_a_matrix_job_once_per_combination(tmp_path: Path, fail_fast: str, results: list[str]) -> None:
    workflow = write(tmp_path, "matrix.yml", SYNTHETIC.replace("FAIL_FAST", fail_fast))
    event = Event("push", {"ref": "refs/heads/main"}, "refs/heads/main", "0" * 40)
    with FakeGitHub() as server:
        jobs = WorkflowRun(workflow, origin=tmp_path, event=event, server=server, root=tmp_path / "run").run()
    each = jobs["each"]
    assert [r.result for r in each.runs] == results
    assert each.result == "failure" and jobs["after"].result == "success", jobs["after"].log()
    ran = [r for r in each.runs if r.result != "cancelled"]
    assert [(r.workspace / "seen.txt").read_text() for r in ran] == [f"{r.matrix['shard']}/3 at {r.matrix['shard']}\n"
                                                                     for r in ran]
    assert len({r.workspace for r in ran}) == len(ran)  # a fresh workspace each


def _base_runs_what_git_says_changed_since_a_commit(matrix_run: MatrixRun) -> None:
    from modelops_ci.commands.shards import changes
    from modelops_ci.errors import UserError

    work = matrix_run.origin.parent / "work"
    found = changes(work, base="HEAD~1")  # the panel changed: every series reads it
    assert found.units() == ["demand"]
    assert found.families["demand"].todo == [f"demand-{s}" for s in SERIES]
    assert changes(work, base="HEAD").units() == []
    with pytest.raises(UserError, match="--base nope: no such commit in this clone"):
        changes(work, base="nope")


def test_a_three_shard_matrix_computes_each_series_once_and_a_missing_shard_stops_the_merge(
        matrix_run: MatrixRun) -> None:
    """One workflow run (~30 s) checked three ways, in one test so that it is built once."""
    _three_shards_each_compute_their_series_once_and_the_merge_computes_none(matrix_run)
    _a_missing_shard_stops_the_merge_which_names_it_and_merges_nothing(matrix_run)
    _base_runs_what_git_says_changed_since_a_commit(matrix_run)
