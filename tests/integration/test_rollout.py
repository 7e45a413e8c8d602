"""`modelops-ci rollout` end to end on real signed versions, a real prediction log and git: simulated
traffic (routed by the server's router, answered by the served models, at chosen times) moves a healthy
challenger from 10% to 100% and makes it the champion, every step a commit; a drifting challenger is
aborted to weight 0 with one incident issue, by pull request, however often the reconciler runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.serve.catalog import Catalog
from modelops_ci.serve.predlog import PredictionLog
from modelops_ci.serve.state import Route
from tests.helpers.cli import run_cli
from tests.helpers.deployed import CHALLENGER, CHAMPION, deployed_repo, deployed_template, loans_rows
from tests.helpers.github_server import REPO, FakeGitHub, listing
from tests.helpers.registry import RegistryRepo, commit_files, with_origin
from tests.helpers.repos import git
from tests.helpers.traffic import simulate

pytestmark = pytest.mark.shared_setup

T0 = 1_800_000_000.0  # the simulated clock's start (unix seconds)
SPAN = 180.0  # each step's traffic: three one-minute intervals, past the two-minute pause
REQUESTS = 900
FILE = "deployments/staging.yaml"


def deployment_text(weight: int, commits: str) -> str:
    return f"""\
apiVersion: modelops/v1
kind: Deployment
metadata: {{name: staging}}
spec:
  stage: staging
  rollout: {{commits: {commits}}}
  models:
    loans:
      champion: {CHAMPION}
      challenger: {CHALLENGER}
      weight: {weight}
      since: {T0}
      steps: [{{weight: 10, pause: 2m}}, {{weight: 50, pause: 2m}}, {{weight: 100}}]
      analysis:
        interval: 1m
        min_samples: 10
        failure_limit: 2
        metrics: {{error_rate: {{max: 0.01}}, input_drift: {{alpha: 0.01}}}}
"""


@pytest.fixture
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deployed_template(tmp_path_factory)


def start(template: Path, tmp_path: Path, commits: str) -> RegistryRepo:
    """The two verified versions, the roll-out started at 10% on main, and a bare origin."""
    repo = deployed_repo(template, tmp_path / "repo")
    commit_files(repo.root, {FILE: deployment_text(10, commits)}, "start the roll-out of loans v1.1.0")
    with_origin(repo.root, tmp_path)
    return repo


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from listing(monkeypatch)


def step(repo: RegistryRepo, log: PredictionLog, path: Path, since: float, weight: int, *, prefix: str,
         drift: bool = False) -> Any:
    """One step's simulated traffic at `weight` from `since`, then `rollout` as at its end."""
    route = replace(served_route(repo.root), weight=weight)
    shifted = (lambda row: {**row, "income": row["income"] * 4 + 500, "age": row["age"] + 40}) if drift else None
    to_challenger = simulate(log, route, loans_rows(repo.root), since, since + SPAN, REQUESTS, prefix=prefix,
                             challenger_rows=shifted)
    assert to_challenger >= 3 * 10  # enough for every interval's min_samples
    return run_cli("rollout", "--stage", "staging", "--now", str(since + SPAN), "--log", path,
                   "--report", path.parent / "report", "-C", repo.root)


_ROUTES: dict[Path, Route] = {}


def served_route(root: Path) -> Route:
    """The loans route as the server would load it (verified versions, models from the DVC cache), once."""
    if root not in _ROUTES:
        _ROUTES[root] = Catalog(root, "staging").load().routes["loans"]
    return _ROUTES[root]


def sync(root: Path) -> dict[str, Any]:
    """The loans entry as origin's main has it (the work tree is left as it is: the reconciler reads
    the fetched base branch, so a loop need not pull between runs)."""
    git("fetch", "-q", "origin", "main", cwd=root)
    return yaml.safe_load(git("show", f"origin/main:{FILE}", cwd=root))["spec"]["models"]["loans"]  # type: ignore[no-any-return]


def test_a_healthy_challenger_rolls_out_step_by_step_and_becomes_the_champion(template: Path, tmp_path: Path) -> None:
    repo = start(template, tmp_path, "direct")
    path = tmp_path / "log.sqlite"
    since, weight = T0, 10
    with PredictionLog.open(path) as log:
        for expected, after in (("advance", 50), ("advance", 100), ("promote", None)):
            done = step(repo, log, path, since, weight, prefix=f"at-{weight}")
            assert done.exit_code == 0, done.stdout + done.stderr
            assert done.stdout.startswith(f"loans: {expected}"), done.stdout
            entry = sync(repo.root)
            if after is None:
                assert entry["champion"] == CHALLENGER and "challenger" not in entry and "weight" not in entry
            else:
                assert (entry["champion"], entry["challenger"], entry["weight"]) == (CHAMPION, CHALLENGER, after)
                since, weight = float(entry["since"]), after
    history = git("log", "--format=%s", "origin/main", "--", FILE, cwd=repo.root).splitlines()
    assert history[:3] == ["Roll-out of loans in staging: the challenger becomes the champion",
                           "Roll-out of loans in staging: 50% -> 100%", "Roll-out of loans in staging: 10% -> 50%"]
    assert (tmp_path / "report" / "staging.html").is_file()


def test_a_drifting_challenger_is_aborted_to_zero_by_pr_with_one_incident_issue(template: Path, tmp_path: Path,
                                                                               gh: FakeGitHub) -> None:
    repo = start(template, tmp_path, "pull-request")
    gh.serve_git(REPO, tmp_path / "origin.git")
    path = tmp_path / "log.sqlite"
    with PredictionLog.open(path) as log:
        done = step(repo, log, path, T0, 10, prefix="drift", drift=True)
        assert done.exit_code == 0, done.stdout + done.stderr
        assert done.stdout.startswith("loans: abort (10% -> 0%)"), done.stdout
        assert "changed significantly (income, age)" in done.stdout
        again = run_cli("rollout", "--stage", "staging", "--now", str(T0 + SPAN), "--log", path,
                        "--report", tmp_path / "report", "-C", repo.root)
        assert again.exit_code == 0, again.stderr
    branch = "rollout/loans-staging-abort-0"
    proposed = yaml.safe_load(git("show", f"origin/{branch}:{FILE}", cwd=repo.root))["spec"]["models"]["loans"]
    assert (proposed["champion"], proposed["challenger"], proposed["weight"]) == (CHAMPION, CHALLENGER, 0)
    pulls = [p for p in gh.pulls.values() if p["head"]["ref"] == branch]
    assert len(pulls) == 1  # the second run found the open PR
    issues = list(gh.issues.values())
    assert len(issues) == 1 and issues[0]["title"] == f"Roll-out aborted: loans {CHALLENGER} in staging"
    assert sync(repo.root)["weight"] == 10  # main changes only when the PR merges
