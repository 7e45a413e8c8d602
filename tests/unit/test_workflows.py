"""The GitHub Actions workflows, the composite action, and the starter workflows `init` writes (#6),
held to the security rules by structural checks on their YAML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import PROJECT
from tests.helpers.workflows import ACTION, NAMES, OWN, STARTER, STARTERS, WORKFLOWS, load_workflow, workflow_steps

# This repository runs the toolchain of the commit under test; a consumer's workflows pin the
# composite action by a full SHA. The starter's pin is a placeholder that can never resolve (no
# commit has the all-zero SHA), so an adopter who forgets to set it gets a loud failure, never a
# stranger's code: the header of each starter workflow says what to put there.
LOCAL_ACTION = "uses: ./.github/actions/modelops  # zizmor: ignore[self-repository] (why: top of file)"
PLACEHOLDER_REPO = "modelops-ci/modelops-ci"
PLACEHOLDER_SHA = "0" * 40
STARTER_ACTION = (f"uses: {PLACEHOLDER_REPO}/.github/actions/modelops@{PLACEHOLDER_SHA}"
                  "  # pin: top of file")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses: \S+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
# The only jobs that may write, and what: everything else reads at most.
WRITES = {
    ("ci.yml", "comment"): {"pull-requests"},
    ("promote.yml", "request"): {"actions"},
    ("promote.yml", "promote"): {"contents"},
    ("monitor.yml", "drift"): {"issues"},
    ("monitor.yml", "traffic"): {"issues"},  # one incident issue per model and cause
    ("rollout.yml", "rollout"): {"contents", "pull-requests", "issues"},
}


# -- helpers --------------------------------------------------------------------------------------


def _triggers(doc: dict[str, Any]) -> dict[str, Any]:
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    return triggers if isinstance(triggers, dict) else {t: None for t in ([triggers] if isinstance(triggers, str)
                                                                          else triggers)}


def _body(text: str) -> str:
    """A workflow without its leading comment block (which explains it to its own readers)."""
    return re.sub(r"\A(?:#[^\n]*\n)+", "", text)


# -- security rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: p.name)
def test_every_action_is_local_or_pinned_by_full_sha_with_its_version(path: Path) -> None:
    for _, step in workflow_steps(path):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert PINNED.match(uses), f"{path.name}: {uses} is not owner/repo@<40-hex commit>"
    for line in path.read_text(encoding="utf-8").splitlines():
        if "uses: actions/" in line:
            assert VERSION_COMMENT.search(line), f"{path.name}: say the pinned release: {line.strip()}"


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: p.name)
def test_no_expression_inside_run(path: Path) -> None:
    for job, step in workflow_steps(path):
        assert "${{" not in step.get("run", ""), f"{path.name}: {job}: pass values through env:, not ${{{{ }}}}"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_least_privilege_per_job(path: Path) -> None:
    doc = load_workflow(path)
    assert doc["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{path.name}: {job_id} says no permissions"
        writes = {scope for scope, level in job["permissions"].items() if level == "write"}
        assert writes == WRITES.get((path.name, job_id), set()), f"{path.name}: {job_id} writes {writes}"
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_no_pull_request_target_and_no_persisted_credentials(path: Path) -> None:
    assert "pull_request_target" not in _triggers(load_workflow(path))
    assert "pull_request_target" not in path.read_text(encoding="utf-8")
    checkouts = [step for _, step in workflow_steps(path) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    for job_id, job in load_workflow(path)["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, f"{path.name}: {job_id}"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_secrets_and_write_tokens_meet_no_cache(path: Path) -> None:
    """A job holding a secret or a write token restores nothing from the Actions cache, which code of
    another run may have written."""
    for job_id, job in load_workflow(path)["jobs"].items():
        holds = "secrets." in json.dumps(job) or "write" in job["permissions"].values()
        for step in job["steps"] if holds else ():
            assert not step.get("uses", "").startswith("actions/cache@"), f"{path.name}: {job_id}"
            if "actions/modelops" in step.get("uses", ""):
                assert step["with"]["cache"] == "false", f"{path.name}: {job_id} must install without cache"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_secrets_reach_only_the_step_that_needs_them(path: Path) -> None:
    for job_id, job in load_workflow(path)["jobs"].items():
        outside = {k: v for k, v in job.items() if k != "steps"}
        assert "secrets." not in json.dumps(outside), f"{path.name}: {job_id}: secrets in job scope"
        for step in job["steps"]:
            assert "secrets." not in json.dumps({k: v for k, v in step.items() if k != "env"})
    text = path.read_text(encoding="utf-8")
    assert ("secrets.MODELOPS_SIGNING_KEY" in text) == (path.name == "promote.yml")


def test_the_signing_key_is_only_in_the_promote_step() -> None:
    holders = [(job, step["name"]) for job, step in workflow_steps(WORKFLOWS / "promote.yml")
               if "MODELOPS_SIGNING_KEY" in json.dumps(step)]
    assert holders == [("promote", "Promote and push the signed tag")]


def test_promotion_is_judged_by_the_default_branch() -> None:
    for job, step in workflow_steps(WORKFLOWS / "promote.yml"):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["ref"] == "${{ github.event.repository.default_branch }}", job
    jobs = load_workflow(WORKFLOWS / "promote.yml")["jobs"]
    assert jobs["promote"]["if"] == ("github.event_name == 'workflow_dispatch' && "
                                     "github.ref_name == github.event.repository.default_branch")
    request = jobs["request"]["if"]
    assert "github.event.pull_request.merged" in request
    assert "github.event.pull_request.base.ref == github.event.repository.default_branch" in request


# A GitHub Environment per secret holder: each limited to the default branch (and, for signing,
# required reviewers) in the repository's settings, as the workflow headers say.
ENVIRONMENTS = {
    ("promote.yml", "promote"): "model-signing",
    ("promote.yml", "sync-mlflow"): "mlflow",
    ("monitor.yml", "drift"): "monitoring",
    ("monitor.yml", "traffic"): "monitoring",
    ("rollout.yml", "rollout"): "rollout",
}


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: str(p.relative_to(PROJECT)))
def test_every_secret_holder_runs_in_its_environment(path: Path) -> None:
    for job_id, job in load_workflow(path)["jobs"].items():
        assert job.get("environment") == ENVIRONMENTS.get((path.name, job_id)), f"{path.name}: {job_id}"
        if "secrets." in json.dumps(job):
            assert job.get("environment"), f"{path.name}: {job_id} reads a secret outside an environment"
    text = path.read_text(encoding="utf-8")
    for environment in {e for (name, _), e in ENVIRONMENTS.items() if name == path.name}:
        assert f"#   {environment}" in text or f"`{environment}`" in text, f"{path.name}: how to set up {environment}"


def test_the_signing_job_runs_only_where_its_environment_can_admit_it() -> None:
    """GitHub judges a pull request's run by its head branch, so an environment limited to the
    default branch could never admit a job on `pull_request`: signing runs on a dispatch from it."""
    jobs = load_workflow(WORKFLOWS / "promote.yml")["jobs"]
    assert "pull_request" not in jobs["promote"]["if"]
    assert jobs["sync-mlflow"]["needs"] == "promote"  # never after a tag push, defined by the tagged commit
    assert "secrets." not in json.dumps(jobs["request"]) and "secrets." not in json.dumps(jobs["verify"])


def test_triggers() -> None:
    ci = _triggers(load_workflow(WORKFLOWS / "ci.yml"))
    assert set(ci) == {"push", "pull_request"}
    promote = _triggers(load_workflow(WORKFLOWS / "promote.yml"))
    assert promote["pull_request"] == {"types": ["closed"], "paths": ["deployments/**"]}
    assert set(promote["workflow_dispatch"]["inputs"]) >= {"name", "version", "stage"}
    assert "**#*" in promote["push"]["tags"]  # every stage tag name#stage#N, names with folders too
    monitor = _triggers(load_workflow(WORKFLOWS / "monitor.yml"))
    assert set(monitor) == {"schedule", "workflow_dispatch"}
    assert re.fullmatch(r"(\S+ ){4}\S+", monitor["schedule"][0]["cron"])
    rollout = _triggers(load_workflow(WORKFLOWS / "rollout.yml"))
    assert set(rollout) == {"schedule", "workflow_dispatch"}
    assert set(rollout["workflow_dispatch"]["inputs"]) == {"stage", "dry-run"}


@pytest.mark.parametrize("workflow", [WORKFLOWS / "monitor.yml", STARTER / "monitor.yml"])
def test_each_monitor_job_runs_on_a_cron_the_schedule_has(workflow: Path) -> None:
    """The drift job is daily and the traffic job hourly: each `if:` names its own cron, and a cron
    that is not in the schedule would leave its job never running."""
    document = load_workflow(workflow)
    crons = [entry["cron"] for entry in _triggers(document)["schedule"]]
    named = {job: re.findall(r"github\.event\.schedule == '([^']+)'", spec["if"])
             for job, spec in document["jobs"].items()}
    assert sorted(named) == ["drift", "traffic"]
    assert sorted(cron for found in named.values() for cron in found) == sorted(crons)
    assert all(len(found) == 1 for found in named.values())


def test_a_merged_rollout_pr_asks_for_no_signing() -> None:
    """A roll-out's PR moves traffic between versions that hold their stage tags already: the
    request job must not treat it as a promotion (which would fail loudly on its branch name)."""
    request = load_workflow(WORKFLOWS / "promote.yml")["jobs"]["request"]["if"]
    assert "!startsWith(github.event.pull_request.head.ref, 'rollout/')" in request
    from modelops_ci.commands import rollout

    assert rollout.BRANCH_PREFIX == "rollout/"


def test_the_workflows_call_the_toolchains_commands() -> None:
    runs = {name: "\n".join(step.get("run", "") for _, step in workflow_steps(WORKFLOWS / name)) for name in NAMES}
    assert "pre-commit run --all-files" in runs["ci.yml"]
    assert "modelops-ci ci" in runs["ci.yml"]
    assert 'modelops-ci github comment --pr "$PR_NUMBER"' in runs["ci.yml"]
    assert 'modelops-ci promote "$NAME@$VERSION" --to "$STAGE" --pr "$PR" --recompute-gates' in runs["promote.yml"]
    assert 'modelops-ci verify --newest "$TAG"' in runs["promote.yml"]  # N above every existing one
    assert "modelops-ci registry sync-mlflow" in runs["promote.yml"]
    assert "modelops-ci monitor" in runs["monitor.yml"]
    assert 'modelops-ci monitor --traffic --stage "$STAGE"' in runs["monitor.yml"]
    assert 'modelops-ci rollout --stage "$STAGE" --base "$DEFAULT_BRANCH" $DRY_RUN' in runs["rollout.yml"]
    upload = [step for _, step in workflow_steps(WORKFLOWS / "ci.yml") if "upload-artifact" in step.get("uses", "")]
    assert upload and upload[0]["with"]["path"] == "reports/\ncompiled/*/dvc.lock\n"


# -- the starter workflows ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_starter_is_this_repos_workflow_but_the_action_pin(name: str) -> None:
    own = (WORKFLOWS / name).read_text(encoding="utf-8")
    starter = (STARTER / name).read_text(encoding="utf-8")
    assert LOCAL_ACTION in own
    assert _body(starter) == _body(own).replace(LOCAL_ACTION, STARTER_ACTION)
    assert "./.github/actions/modelops" not in starter
    assert "replace modelops-ci/modelops-ci" in starter  # the header says what to pin


def test_starter_pin_is_owner_repo_path_at_a_full_sha() -> None:
    for path in STARTERS:
        uses = {step["uses"] for _, step in workflow_steps(path) if "actions/modelops" in step.get("uses", "")}
        assert uses == {f"{PLACEHOLDER_REPO}/.github/actions/modelops@{PLACEHOLDER_SHA}"}
        assert all(PINNED.match(u) for u in uses)
