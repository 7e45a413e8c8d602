"""Files and git repos in tmp_path: write a file, run git, build the two-pipeline ML repo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import run_exe
from tests.helpers.data import loans_csv, sales_csv
from tests.helpers.specs import LOANS_SPEC, SALES_SPEC

EXAMPLE_PARTS = ("pipelines", "policies")


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
