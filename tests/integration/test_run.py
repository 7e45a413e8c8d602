"""`modelops-ci run` for real: DVC runs the stages, caches and pushes; clones reproduce the bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.paths import BIN
from tests.helpers.repos import git, write
from tests.helpers.templates import trained_ml_copy

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

OUTPUTS = ("data/{p}/dataset.parquet", "data/{p}/train.parquet", "data/{p}/test.parquet",
           "models/{p}/model.skops", "models/{p}/model.json", "reports/{p}/predictions.parquet",
           "reports/{p}/metrics.json", "reports/{p}/profile.json")
PIPELINES = ("loans", "sales")


def _outputs(repo: Path, pipelines: tuple[str, ...] = PIPELINES) -> dict[str, bytes]:
    return {rel: (repo / rel).read_bytes() for p in pipelines for rel in (o.format(p=p) for o in OUTPUTS)}


def _clone(source: Path, target: Path) -> Path:
    git("clone", "-q", str(source), str(target), cwd=source.parent)
    return target


@pytest.fixture(scope="module")
def ran_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ml repo after one full `run --all`, with its lock files committed (the session's template)."""
    return trained_ml_copy(tmp_path_factory, tmp_path_factory.mktemp("ran") / "repo")


def test_first_run_runs_every_stage_and_pushes(ran_repo: Path) -> None:
    lock = (ran_repo / "compiled/loans/dvc.lock").read_text()
    for stage in ("ingest", "split", "train", "evaluate"):
        assert f"  {stage}:" in lock
    remote = ran_repo / ".modelops" / "dvc-remote"
    assert remote.is_dir() and any(remote.rglob("*")), "run pushes to the default local remote"
    assert (ran_repo / ".modelops" / "mlflow.db").is_file()
    assert not (ran_repo / "mlruns").exists()
    # data and models are DVC outputs (git-ignored); metrics and profile are committed to git
    tracked = git("ls-files", cwd=ran_repo).split()
    assert "reports/loans/metrics.json" in tracked
    assert "models/loans/model.skops" not in tracked


def test_second_run_reruns_nothing(ran_repo: Path) -> None:
    result = run_exe("run", "--all", cwd=ran_repo)
    assert result.exit_code == 0, result.stderr
    assert "0 of 8 stage(s) ran" in result.stdout
    assert "loans:evaluate  cached" in result.stdout
    assert "roc_auc=" in result.stdout  # the table shows the key metrics even when cached
    assert git("status", "--porcelain", cwd=ran_repo) == ""


def test_force_reruns_and_gives_the_same_bytes(ran_repo: Path, tmp_path: Path) -> None:
    """Outputs restored from the remote (the first run's bytes), then every stage run again."""
    repo = _clone(ran_repo, tmp_path / "forced")
    _share_remote(ran_repo, repo)
    subprocess.run([str(BIN / "dvc"), "pull", "-q"], cwd=repo, check=True)
    before = _outputs(ran_repo, ("loans",))
    assert _outputs(repo, ("loans",)) == before
    result = run_exe("run", "loans", "--force", cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert "4 of 4 stage(s) ran" in result.stdout
    assert _outputs(repo, ("loans",)) == before


def _share_remote(origin: Path, clone: Path) -> None:
    """Point the clone at the origin's local remote: by DVC config only, as with any remote."""
    url = str(origin / ".modelops" / "dvc-remote")
    command = [str(BIN / "dvc"), "remote", "modify", "--local", "local", "url", url]
    subprocess.run(command, cwd=clone, check=True)


def test_fresh_clone_and_dvc_pull_restore_every_output(ran_repo: Path, tmp_path: Path) -> None:
    clone = _clone(ran_repo, tmp_path / "pulled")
    _share_remote(ran_repo, clone)
    assert not (clone / "models/loans/model.skops").exists()
    subprocess.run([str(BIN / "dvc"), "pull", "-q"], cwd=clone, check=True)
    assert _outputs(clone) == _outputs(ran_repo)
    status = subprocess.run([str(BIN / "dvc"), "status", "-q"], cwd=clone, check=False)
    assert status.returncode == 0


def test_two_fresh_clones_give_byte_identical_results(ran_repo: Path, tmp_path: Path) -> None:
    """The committed lock was made by the first run; a fresh clone recomputes everything."""
    clone = _clone(ran_repo, tmp_path / "again")
    result = run_exe("run", "--all", cwd=clone)
    assert result.exit_code == 0, result.stderr
    assert "8 of 8 stage(s) ran" in result.stdout
    assert _outputs(clone) == _outputs(ran_repo)
    assert git("status", "--porcelain", cwd=clone) == "", "same locks: nothing changed"


# An estimator that signals it is fitting, then waits for the kill: the test kills `run` mid-train,
# at this point and no other (a plug-in estimator on PYTHONPATH, as a repo's own would be).
BLOCKING_ESTIMATOR = """\
import os
import signal
from pathlib import Path

from sklearn.linear_model import LogisticRegression


class FitUntilKilled(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        Path(os.environ["FIT_STARTED"]).touch()
        while True:
            signal.pause()
"""


def _run_killed_mid_train(clone: Path, plugin_dir: Path) -> None:
    """`run loans` with train's estimator swapped for one that blocks in fit, SIGKILLed (it and DVC at
    once) when fit has begun; then the spec and compiled files are back as committed."""
    write(plugin_dir, "fit_until_killed.py", BLOCKING_ESTIMATOR)
    spec = clone / "pipelines/loans.yaml"
    spec.write_text(spec.read_text().replace("sklearn.linear_model.LogisticRegression",
                                              "fit_until_killed.FitUntilKilled"))
    assert run_exe("compile", cwd=clone).exit_code == 0
    changed = git("diff", "--name-only", cwd=clone).split()
    started = plugin_dir / "fit-started"
    env = {**os.environ, "FIT_STARTED": str(started),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_dir), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([str(BIN / "modelops-ci"), "run", "loans"], cwd=clone, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not started.exists():  # fit blocks once it has begun, so the kill below cannot come late
        assert proc.poll() is None, "run ended before train began to fit"
        assert time.monotonic() < deadline, "train never began to fit"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-train: the stage and DVC die at once
    proc.wait()
    git("checkout", "--", *changed, cwd=clone)


def test_killed_run_then_rerun_completes_with_the_same_outputs(ran_repo: Path, tmp_path: Path) -> None:
    clone = _clone(ran_repo, tmp_path / "killed")
    _run_killed_mid_train(clone, tmp_path / "plugin")
    split_outputs = [clone / "data/loans/train.parquet", clone / "data/loans/test.parquet"]
    assert all(out.exists() for out in split_outputs), "split finished before train began"
    assert not (clone / "models/loans/model.json").exists(), "killed before train wrote its card"
    # What a kill in the middle of a write leaves (it is timing-dependent, so made certain here):
    debris = [clone / "data/loans/.test.parquet.k1ll3d.tmp", clone / "models/loans/.model.skops.k1ll3d.tmp"]
    for temp in debris:
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"half a file")
    result = run_exe("run", "loans", cwd=clone)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert _outputs(clone, ("loans",)) == _outputs(ran_repo, ("loans",))
    assert not list(clone.rglob("*.tmp")), "the re-run sweeps what the killed one left"


def test_run_without_pipelines_or_all_is_a_usage_error(ml_repo: Path) -> None:
    result = run_exe("run", cwd=ml_repo)
    assert result.exit_code == 2
    assert "--all" in result.stderr


def test_run_of_an_unknown_pipeline_names_the_compiled_ones(ml_repo: Path) -> None:
    result = run_exe("run", "loan", cwd=ml_repo)
    assert result.exit_code == 2
    assert "no compiled pipeline loan" in result.stderr
    assert "loans" in result.stderr


def test_stage_failure_exits_2_with_the_step_message(ml_repo: Path) -> None:
    spec = ml_repo / "pipelines" / "loans.yaml"
    spec.write_text(spec.read_text().replace("column: default", "column: defualt"))
    assert run_exe("compile", cwd=ml_repo).exit_code == 0
    result = run_exe("run", "loans", cwd=ml_repo)
    assert result.exit_code == 2
    where = "pipelines/loans.yaml:10: spec.data.target.column"
    assert f"{where}: column 'defualt' is not in the data" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (ml_repo / "data/loans/dataset.parquet").exists()
