"""Repos built once per test session and copied per module or test: the xdist workers of one session
share a folder (their base folders are siblings), and a file lock makes the first worker that needs a
template build it while the others wait.

    copy = trained_ml_copy(tmp_path_factory, tmp_path / "ml")   # `run --all` done, committed

A module that adds a policy or changes a spec compiles and runs the copy: DVC re-runs only the
stages its change touches.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_ci.layout import STATE_DIR
from tests.helpers.cli import run_exe
from tests.helpers.repos import git, isolate, make_ml_repo


def session_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """The folder `name` of this session, one for all its xdist workers."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / name
    folder.mkdir(exist_ok=True)
    return folder


def build_once(folder: Path, build: Callable[[], None]) -> None:
    """Run `build` (which fills `folder`) unless a whole earlier build is there; it runs isolated
    (own HOME, pinned git identity) even when a module- or session-scoped fixture asks first."""
    from filelock import FileLock

    with FileLock(folder / "build.lock"):  # another worker may be building it right now
        if not (folder / "built").is_file():
            with pytest.MonkeyPatch.context() as env:
                (folder / "home").mkdir(exist_ok=True)
                isolate(env, folder / "home")
                build()
            (folder / "built").touch()  # a whole build: a worker killed mid-way leaves none


def build_trained_ml(repo: Path) -> None:
    """make_ml_repo (loans and sales) with `run --all` done and everything committed."""
    shutil.rmtree(repo, ignore_errors=True)
    make_ml_repo(repo)
    ran = run_exe("run", "--all", cwd=repo)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "run --all", cwd=repo)


def trained_ml_copy(factory: pytest.TempPathFactory, dest: Path) -> Path:
    """A full copy at `dest` of the trained ml repo (built on first use): git, DVC outputs, cache and
    local remote, and .modelops/ (MLflow store included) as the run left them."""
    folder = session_folder(factory, "ml-trained")
    build_once(folder, lambda: build_trained_ml(folder / "repo"))
    return copy_repo(folder / "repo", dest)


def copy_repo(source: Path, dest: Path) -> Path:
    """Copy a repo that `run` used, with its MLflow store re-pointed at the copy's own artifacts."""
    shutil.copytree(source, dest, symlinks=True)
    _repoint_artifacts(dest / STATE_DIR / "mlflow.db", source.as_uri(), dest.as_uri())
    return dest


def _repoint_artifacts(store: Path, old: str, new: str) -> None:
    """MLflow keeps absolute artifact locations: a run in the copy must write to the copy, not the template."""
    if not store.is_file():
        return
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info('{table}')")]
            for column in set(columns) & {"artifact_location", "artifact_uri"}:
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
