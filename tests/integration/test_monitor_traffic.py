"""`modelops-ci monitor --traffic` end to end: a real prediction log of the staging deployment's
verified loans version, hour windows against the reference read at its signed tag, one incident
issue opened when the inputs drift, kept (not duplicated) while they do, and closed once they are
clear; a model nobody deploys is named and left out."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.serve.predlog import PredictionLog
from modelops_ci.serve.records import Record
from tests.helpers.cli import run_cli
from tests.helpers.deployed import CHAMPION, deployed_repo, deployed_template, deployment, loans_rows
from tests.helpers.github_server import REPO, FakeGitHub, listing
from tests.helpers.registry import POLICY_FILE, commit_files, with_origin
from tests.helpers.repos import git

pytestmark = pytest.mark.shared_setup

HOUR = 3600.0
H0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR  # an hour boundary
PER_HOUR = 600


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from listing(monkeypatch)


def hour_of_traffic(log: PredictionLog, rows: list[dict[str, Any]], hour: int, *, drift: bool = False,
                    model: str = "loans", version: str = CHAMPION) -> None:
    rng = random.Random(hour)
    records = []
    for n in range(PER_HOUR):
        row = dict(rng.choice(rows))
        if drift:
            row = {**row, "income": row["income"] * 4 + 500, "age": row["age"] + 40}
        records.append(Record(f"{model}-{hour}-{n}", model, version, "champion", True, H0 + hour * HOUR + n * 5.0,
                              3.0, 200, None, json.dumps([row]), "[0]", "[0.2]"))
    log.append(records).result()


def look(repo: Path, log: Path, hour: float) -> Any:
    return run_cli("monitor", "--traffic", "--stage", "staging", "--log", log, "--now", str(H0 + hour * HOUR),
                   "-C", repo)


def test_drift_opens_one_incident_kept_while_it_lasts_and_closed_when_clear(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, gh: FakeGitHub) -> None:
    repo = deployed_repo(deployed_template(tmp_path_factory), tmp_path / "repo")
    commit_files(repo.root, {"deployments/staging.yaml": deployment(f"    loans: {{champion: {CHAMPION}}}\n")},
                 "deploy loans to staging")
    rows = loans_rows(repo.root)
    path = tmp_path / "staging.sqlite"
    with PredictionLog.open(path) as log:
        hour_of_traffic(log, rows, 0)
        hour_of_traffic(log, rows, 1)
        hour_of_traffic(log, rows, 2, drift=True)
        hour_of_traffic(log, rows, 1, model="ghost", version="v9")

    first = look(repo.root, path, 3.1)
    assert first.exit_code == 1, first.stdout + first.stderr
    assert "loans: 3 windows of 1h (1 drift, 2 pass)" in first.stdout
    assert "alert input_drift: open https://github.com/" in first.stdout
    assert "not assessed: ghost is in the log but staging's deployment does not name it" in first.stdout
    [issue] = gh.issues.values()
    assert (issue["title"], issue["state"]) == ("Monitoring: input drift on loans", "open")
    assert issue["body"].startswith("<!-- modelops-ci:monitor-alert model=loans cause=input_drift ")
    report = json.loads((repo.root / "reports" / "monitoring" / "staging.json").read_text())
    [loans] = report["models"]
    assert [w["status"] for w in loans["windows"]] == ["pass", "pass", "drift"]
    assert {"income", "age"} <= set(loans["windows"][2]["drifted"])

    again = look(repo.root, path, 3.5)
    assert again.exit_code == 1, again.stdout + again.stderr
    assert "alert input_drift: update" in again.stdout
    assert len(gh.issues) == 1 and not gh.calls_to("POST", f"/repos/{REPO}/issues/1/comments")

    with PredictionLog.open(path) as log:
        hour_of_traffic(log, rows, 3)
    cleared = look(repo.root, path, 4.1)
    assert cleared.exit_code == 0, cleared.stdout + cleared.stderr
    assert "alert input_drift: close" in cleared.stdout
    assert issue["state"] == "closed"
    [comment] = gh.calls_to("POST", f"/repos/{REPO}/issues/1/comments")
    assert comment.body["body"].startswith("Resolved: none of 4 features changed significantly")

    kept = sorted(p.name for p in (repo.root / ".modelops/monitor/staging/loans" / CHAMPION).glob("*.npz"))
    assert kept == [f"{H0 + h * HOUR:.0f}-{H0 + (h + 1) * HOUR:.0f}.npz" for h in range(4)]
    rotated_away = tmp_path / "empty.sqlite"
    PredictionLog.open(rotated_away).close()
    later = run_cli("monitor", "--traffic", "--stage", "staging", "--log", rotated_away, "--open", "none", "--now",
                    str(H0 + 5 * HOUR), "-C", repo.root)
    assert later.exit_code == 0, later.stdout + later.stderr
    [day] = json.loads((repo.root / "reports/monitoring/staging.json").read_text())["models"][0]["days"]
    assert (day["rows"], day["status"]) == (4 * PER_HOUR, "drift")  # from its four hours' profiles alone, hour 2 in it


def test_a_log_with_no_traffic_of_a_deployed_model_and_no_log_at_all(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    repo = deployed_repo(deployed_template(tmp_path_factory), tmp_path / "repo")
    commit_files(repo.root, {"deployments/staging.yaml": deployment(f"    loans: {{champion: {CHAMPION}}}\n")},
                 "deploy loans to staging")
    missing = look(repo.root, tmp_path / "nothing.sqlite", 1)
    assert missing.exit_code == 2
    assert "no prediction log" in missing.stderr and "modelops-ci serve --stage staging" in missing.stderr
    path = tmp_path / "empty.sqlite"
    PredictionLog.open(path).close()
    quiet = run_cli("monitor", "--traffic", "--stage", "staging", "--log", path, "--open", "none", "--now",
                    str(H0), "-C", repo.root)
    assert quiet.exit_code == 0, quiet.stdout + quiet.stderr
    assert "loans: 0 windows of 1h (no windows)" in quiet.stdout


def test_a_retrain_worthy_drift_opens_a_retraining_pr_with_the_logged_rows_tracked_by_dvc(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, gh: FakeGitHub) -> None:
    """The policy marks input drift retrain-worthy: with --retrain the new incident comes with a PR
    whose branch adds the logged rows (labels mapped back to the target's classes) as a DVC-tracked
    file pushed to the DVC remote, and the spec reading it as one more source. The work tree is
    untouched, and a second look opens nothing new."""
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from modelops_ci.serve.records import Feedback

    repo = deployed_repo(deployed_template(tmp_path_factory), tmp_path / "repo")
    policy = (repo.root / POLICY_FILE).read_text() + "  monitoring:\n    retrain_on: [input_drift]\n"
    commit_files(repo.root, {"deployments/staging.yaml": deployment(f"    loans: {{champion: {CHAMPION}}}\n"),
                             POLICY_FILE: policy}, "deploy loans to staging; retrain on drift")
    store = tmp_path / "dvcstore"
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "store", str(store)],
                   cwd=repo.root, check=True, capture_output=True)
    origin = with_origin(repo.root, tmp_path)
    gh.serve_git(REPO, origin)
    rows = loans_rows(repo.root)
    path = tmp_path / "staging.sqlite"
    with PredictionLog.open(path) as log:
        for hour in (0, 1):
            hour_of_traffic(log, rows, hour)
        hour_of_traffic(log, rows, 2, drift=True)
        log.add_feedback([Feedback(f"loans-2-{n}", 0, "1" if n % 3 == 0 else "0", H0 + 3 * HOUR)
                          for n in range(30)]).result()
    status_before = git("status", "--porcelain", "--untracked-files=no", cwd=repo.root)

    done = run_cli("monitor", "--traffic", "--retrain", "--stage", "staging", "--log", path, "--now",
                   str(H0 + 3.1 * HOUR), "-C", repo.root)
    assert done.exit_code == 1, done.stdout + done.stderr
    [pull] = gh.pulls.values()
    branch = pull["head"]["ref"]
    assert f"retraining PR: {pull['html_url']}" in done.stdout
    assert branch.startswith("retrain/loans-staging-") and pull["base"]["ref"] == "main"
    stamp = branch.removeprefix("retrain/loans-staging-")
    data = f"data/retrain/loans/staging-{stamp}.parquet"
    spec = yaml.safe_load(git("show", f"origin/{branch}:pipelines/loans.yaml", cwd=repo.root))
    assert spec["spec"]["data"]["source"] == [{"path": "data/raw/loans.csv"}, {"path": data}]
    pointer = yaml.safe_load(git("show", f"origin/{branch}:{data}.dvc", cwd=repo.root))
    md5 = pointer["outs"][0]["md5"]
    pushed = store / "files" / "md5" / md5[:2] / md5[2:]
    snapshot = pd.read_parquet(pushed)
    assert len(snapshot) == 3 * PER_HOUR
    labelled = snapshot["default"].dropna()
    assert set(labelled) == {"yes", "no"} and len(labelled) == 30 and (labelled == "yes").sum() == 10
    assert git("status", "--porcelain", "--untracked-files=no", cwd=repo.root) == status_before
    assert not (repo.root / "data" / "retrain").exists()  # the snapshot was made in a worktree of its own
    assert "retraining" in pull["body"].lower() or "training data" in pull["body"]

    again = run_cli("monitor", "--traffic", "--retrain", "--stage", "staging", "--log", path, "--now",
                    str(H0 + 3.2 * HOUR), "-C", repo.root)
    assert again.exit_code == 1 and len(gh.pulls) == 1, again.stdout + again.stderr
