"""The pre-commit hooks, used the way a consumer repository uses them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_ci import hooks
from tests.helpers.cli import run_exe
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.repos import git

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

HEAVY = ("pandas", "sklearn", "mlflow", "dvc", "matplotlib", "fairlearn", "numpy", "scipy")


def test_hook_commands_import_no_ml_library(example_repo: Path) -> None:
    for entry in (hook.entry for hook in hooks.HOOKS):
        args = entry.split()[1:]
        code = (
            "import sys, json\n"
            "from modelops_ci.cli.main import main\n"
            f"try:\n    main({args!r} + ['-C', {str(example_repo)!r}])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        loaded = {m.split(".")[0] for m in report["modules"]}
        assert not loaded & set(HEAVY), f"{entry} imported {sorted(loaded & set(HEAVY))}"
        assert report["code"] in (0, 1)  # it really ran (1: compile --check on an uncompiled copy)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith(
        ("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_NOSYSTEM"))}
    env["PRE_COMMIT_HOME"] = str(home)
    return subprocess.run([str(BIN / "pre-commit"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def _consumer(example_repo: Path) -> Path:
    git("init", "-q", cwd=example_repo)
    assert run_exe("compile", cwd=example_repo).exit_code == 0
    git("add", "-A", cwd=example_repo)
    git("commit", "-qm", "specs", cwd=example_repo)
    return example_repo


@pytest.mark.slow
def test_consumer_runs_the_hooks_with_try_repo(example_repo: Path, pre_commit_home: Path) -> None:
    consumer = _consumer(example_repo)
    ok = _pre_commit("try-repo", str(PROJECT), "--all-files", cwd=consumer, home=pre_commit_home)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "validate modelops specs, policies and deployments" in ok.stdout
    assert "check the compiled DVC pipeline is fresh" in ok.stdout

    spec = consumer / "pipelines" / "credit-risk.yaml"
    spec.write_text(spec.read_text().replace("      column: Status", "      colum: Status"))
    git("add", "-A", cwd=consumer)
    bad = _pre_commit("try-repo", str(PROJECT), "modelops-validate", "--all-files", cwd=consumer,
                      home=pre_commit_home)
    assert bad.returncode == 1
    assert "pipelines/credit-risk.yaml" in bad.stdout
    assert "spec.data.target.colum: unknown key 'colum' (did you mean 'column'?)" in bad.stdout


@pytest.mark.slow
def test_init_repo_passes_its_own_pre_commit_config(tmp_path: Path, pre_commit_home: Path) -> None:
    target = tmp_path / "fresh"
    assert run_exe("init", target).exit_code == 0
    git("add", "-A", cwd=target)
    result = _pre_commit("run", "--all-files", cwd=target, home=pre_commit_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Passed") == len(hooks.HOOKS)
    shutil.rmtree(target / "compiled")
    stale = _pre_commit("run", "--all-files", cwd=target, home=pre_commit_home)
    assert stale.returncode == 1
    assert "compile" in stale.stdout
