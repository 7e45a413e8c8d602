"""Files and git repos in tmp_path: write a file, run git, build the two-pipeline ML repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_ci.offline import QUIET_ENV
from tests.helpers.cli import run_exe
from tests.helpers.data import loans_csv, sales_csv
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.specs import LOANS_SPEC, SALES_SPEC

EXAMPLE_PARTS = ("pipelines", "policies", "formulations", "data/facility")


def isolate(env: pytest.MonkeyPatch, home: Path) -> None:
    """Own HOME and MLflow store, fixed git identity, no GIT_* from the caller, quiet tools, this
    venv's executables first."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            env.delenv(name)
    env.delenv("MLFLOW_TRACKING_URI", raising=False)  # each repo's own store, unless a test names one
    env.setenv("HOME", str(home))
    env.setenv("GIT_CONFIG_NOSYSTEM", "1")
    env.setenv("GIT_AUTHOR_NAME", "Test Author")
    env.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    env.setenv("GIT_COMMITTER_NAME", "Test Committer")
    env.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    for name, value in QUIET_ENV.items():
        env.setenv(name, value)
    env.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def copy_example(repo: Path) -> Path:
    """This project's example specs and policies copied into the new folder `repo` (no git)."""
    repo.mkdir(parents=True)
    for part in EXAMPLE_PARTS:
        shutil.copytree(PROJECT / part, repo / part)
    return repo


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def write(repo: Path, relative: str, text: str) -> Path:
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_ml_repo(repo: Path) -> Path:
    """A git + DVC repo with two small pipelines on CSV data, compiled and committed."""
    from modelops_ci.commands.init import DVC_CONFIG

    repo.mkdir(parents=True, exist_ok=True)
    git("init", "-q", cwd=repo)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / ".dvc" / "config").write_text(DVC_CONFIG)
    write(repo, ".gitignore", ".modelops/\n")
    write(repo, "data/raw/loans.csv", loans_csv())
    write(repo, "data/raw/sales.csv", sales_csv())
    write(repo, "pipelines/loans.yaml", LOANS_SPEC)
    write(repo, "pipelines/sales.yaml", SALES_SPEC)
    assert run_exe("compile", cwd=repo).exit_code == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "pipelines", cwd=repo)
    return repo
