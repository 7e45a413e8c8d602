"""A repo with two verified versions of `loans` in staging, for the serving and roll-out tests.

v1.0.0 is the trained registry repo's model (LogisticRegression, C=1); v1.1.0 is retrained at a
later commit with C=0.05, so the two answer differently. Both are registered and assigned to
staging with signed tags (ci-bot), so either may serve there. Built once per session
(tests/helpers/templates.py: the xdist workers share it) and copied per user, DVC cache included:

    repo = deployed_repo(deployed_template, tmp_path / "repo")
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.registry import (
    KEYS,
    RegistryRepo,
    SshKey,
    assign,
    build_registry_repo,
    head,
    register,
)
from tests.helpers.repos import git, write
from tests.helpers.specs import LOANS_SPEC
from tests.helpers.templates import build_once, copy_repo, session_folder

STAGE = "staging"
CHAMPION, CHALLENGER = "v1.0.0", "v1.1.0"


def loans_rows(root: Path) -> list[dict[str, Any]]:
    """The loans table's rows as a client sends them (data/raw/loans.csv of the repo at `root`)."""
    import csv

    with (root / "data" / "raw" / "loans.csv").open() as handle:
        return [{"income": float(r["income"]), "debt": float(r["debt"]), "age": float(r["age"]),
                 "region": r["region"]} for r in csv.DictReader(handle)]


def deployment(models: str, stage: str = STAGE) -> str:
    """deployments/<stage>.yaml text with `models` (indented four spaces, under spec.models)."""
    return (f"apiVersion: modelops/v1\nkind: Deployment\nmetadata: {{name: {stage}}}\nspec:\n  stage: {stage}\n"
            f"  models:\n{models}")


def build_deployed_repo(root: Path, keys_dir: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(keys_dir, ignore_errors=True)
    repo = build_registry_repo(root, keys_dir)
    register(repo, version=CHAMPION)
    assign(repo, STAGE, 1, version=CHAMPION)
    write(root, "pipelines/loans.yaml", LOANS_SPEC.replace("C: 1.0", "C: 0.05"))
    for args in (("compile",), ("run", "loans")):
        done = run_exe(*args, cwd=root)
        assert done.exit_code == 0, done.stdout + done.stderr
    git("add", "-A", cwd=root)
    git("commit", "-qm", "loans: stronger regularisation", cwd=root)
    retrained = RegistryRepo(root, head(root), repo.keys)
    register(retrained, version=CHALLENGER)
    assign(retrained, STAGE, 2, version=CHALLENGER)


def deployed_template(factory: pytest.TempPathFactory) -> Path:
    """The one folder per session where the repo is built on first use (xdist workers share it)."""
    return session_folder(factory, "deployed-loans")


def deployed_repo(template_dir: Path, dest: Path) -> RegistryRepo:
    """A full copy at `dest` of the repo (built on first use): git with its tags, the DVC outputs and cache."""
    source, keys_dir = template_dir / "repo", template_dir / "keys"
    build_once(template_dir, lambda: build_deployed_repo(source, keys_dir))
    copy_repo(source, dest)
    keys = {name: SshKey(name, keys_dir / name, " ".join((keys_dir / f"{name}.pub").read_text().split()[:2]))
            for name in KEYS}
    return RegistryRepo(dest, head(dest), keys)
