"""Shared fixtures: a pinned git identity and HOME, example repos in tmp_path, a CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_ci.cli import main
from modelops_ci.offline import QUIET_ENV

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("pipelines", "policies")
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config leaks in: own HOME, fixed git identity, no GIT_* from the caller."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None) -> Result:
    """Run the CLI in-process through its real entry point and top-level error handler."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def run_exe(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the installed `modelops-ci` as a user would, in a subprocess."""
    proc = subprocess.run([str(BIN / "modelops-ci"), *[str(a) for a in args]], cwd=cwd,
                          capture_output=True, text=True, check=False, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A copy of this project's example specs and policies in a fresh directory (no git)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for part in EXAMPLE_PARTS:
        shutil.copytree(PROJECT / part, repo / part)
    return repo


@pytest.fixture
def empty_repo(tmp_path: Path) -> Iterator[Path]:
    """An empty repository folder with pipelines/ and policies/."""
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "policies").mkdir()
    yield repo


def write(repo: Path, relative: str, text: str) -> Path:
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
