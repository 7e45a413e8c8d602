"""`modelops-ci init`: a repo on which validate and compile --check pass, without losing files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.helpers.cli import run_exe
from tests.helpers.paths import PROJECT
from tests.helpers.repos import git


def test_init_makes_a_working_repo(tmp_path: Path) -> None:
    target = tmp_path / "new-repo"
    result = run_exe("init", target)
    assert result.exit_code == 0, result.stderr
    for part in (".git", ".dvc", "pipelines/card-approval.yaml", "pipelines/templates/classifier.yaml",
                 "policies/default.yaml", ".pre-commit-config.yaml", ".gitignore", "dvc.yaml",
                 "compiled/card-approval/dvc.yaml", "compiled/card-approval/params.yaml"):
        assert (target / part).exists(), part
    assert run_exe("validate", cwd=target).exit_code == 0
    check = run_exe("compile", "--check", cwd=target)
    assert check.exit_code == 0, check.stdout + check.stderr
    assert (target / "dvc.yaml").stat().st_mode & 0o044 == 0o044  # readable like any file
    assert ".venv/" in (target / ".gitignore").read_text().splitlines()  # the README's first step makes one


def test_init_writes_the_pre_push_hook_and_points_git_at_it(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    result = run_exe("init", target, stdin="")
    assert result.exit_code == 0, result.stderr
    hook = target / "hooks" / "pre-push"
    assert hook.read_bytes() == (PROJECT / "hooks" / "pre-push").read_bytes()
    assert os.access(hook, os.X_OK)
    assert git("config", "--get", "core.hooksPath", cwd=target).strip() == "hooks"
    assert "git config core.hooksPath hooks" in result.stdout


def test_init_does_not_change_another_hooks_path_without_asking(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    git("init", "-q", cwd=target)
    git("config", "core.hooksPath", ".githooks", cwd=target)

    piped = run_exe("init", target, stdin="y\n")  # no terminal: nobody to ask, so nothing changes

    assert piped.exit_code == 0, piped.stderr
    assert git("config", "--get", "core.hooksPath", cwd=target).strip() == ".githooks"
    assert re.search(r"core.hooksPath left at \.githooks .*`modelops-ci init --yes`", piped.stdout), piped.stdout
    assert (target / "hooks" / "pre-push").is_file()

    accepted = run_exe("init", target, "--yes", stdin="")
    assert accepted.exit_code == 0, accepted.stderr
    assert git("config", "--get", "core.hooksPath", cwd=target).strip() == "hooks"


def test_init_keeps_existing_files(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    (target / "policies").mkdir(parents=True)
    mine = "# my own policy, not to be lost\n"
    (target / "policies" / "default.yaml").write_text(mine)
    result = run_exe("init", target)
    # The kept file is not a valid policy, so compiling refuses (exit 2) — but nothing is lost.
    assert (target / "policies" / "default.yaml").read_text() == mine
    assert "kept existing policies/default.yaml" in result.stdout or result.exit_code == 2
    assert "policies/default.yaml:1:1: file is empty" in result.stderr


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    assert run_exe("init", target).exit_code == 0
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git/" not in p.as_posix()}
    again = run_exe("init", target)
    assert again.exit_code == 0
    assert "kept existing pipelines/card-approval.yaml" in again.stdout
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git/" not in p.as_posix()}
    assert before == after


def test_init_in_a_subfolder_of_a_git_repo(tmp_path: Path) -> None:
    git("init", "-q", str(tmp_path), cwd=tmp_path)
    sub = tmp_path / "ml"
    result = run_exe("init", sub)
    assert result.exit_code == 0, result.stderr
    assert not (sub / ".git").exists()
    assert (sub / ".dvc").is_dir()
    assert run_exe("compile", "--check", cwd=sub).exit_code == 0


def test_init_then_ci_passes_out_of_the_box(tmp_path: Path) -> None:
    """The scaffold passes its own policy: a new user's first `ci` is green (issue 11, item 13)."""
    target = tmp_path / "fresh"
    assert run_exe("init", target, stdin="").exit_code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}  # no job summary page

    result = run_exe("ci", cwd=target, env=env)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "verdict: 1 of 1 pipeline passed its gates"
    evaluate = next(line for line in result.stdout.splitlines() if line.startswith("card-approval:evaluate "))
    assert re.search(r"\s{2}roc_auc=0\.\d+, ", evaluate), "the gated metric comes first: " + evaluate
