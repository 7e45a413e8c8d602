"""`modelops-ci init`: a working ModelOps repository in one command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from modelops_ci import git, hooks
from modelops_ci.commands.compile import compile_repo
from modelops_ci.errors import MissingDependencyError, UserError
from modelops_ci.fsutil import write_atomic
from modelops_ci.offline import QUIET_ENV

DOT_PREFIX = "dot-"  # package data cannot reliably ship dotfiles
HOOKS_DIR = "hooks"  # starter/hooks/pre-push: refuses to push a registry tag that does not verify
# No analytics or update checks (nothing leaves the machine) and a default local remote inside
# the ignored state folder; any DVC remote (S3...) replaces it by config only.
DVC_CONFIG = """[core]
    analytics = false
    check_update = false
    remote = local
['remote "local"']
    url = ../.modelops/dvc-remote
"""


@dataclass
class Scaffolded:
    """What init did."""

    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    hooks_path: str = ""  # git's core.hooksPath as init left it
    other_hooks_path: str = ""  # a core.hooksPath that was set to another folder: init did not change it


def hooks_path_for(root: Path) -> str:
    """core.hooksPath for the scaffold's hooks/: git takes a relative one from the work tree's top."""
    top = git.toplevel(root) or root
    return (root / HOOKS_DIR).relative_to(top).as_posix()


def current_hooks_path(root: Path) -> str:
    return git.run("config", "--get", "core.hooksPath", cwd=root, check=False).stdout.strip()


def use_hooks(root: Path) -> str:
    """Point git's core.hooksPath at the scaffold's hooks/ (so pre-push checks registry tags)."""
    wanted = hooks_path_for(root)
    git.run("config", "core.hooksPath", wanted, cwd=root)
    return wanted


def scaffold(directory: Path) -> Scaffolded:
    """Make `directory` a ModelOps repo; existing files are kept, never overwritten."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    result = Scaffolded(root)
    top = git.toplevel(root)
    if top is None:
        git.init(root)
        result.created.append(".git/")
    if not (root / ".dvc").is_dir():
        _dvc_init(root, subdir=top is not None and top != root)
        result.created.append(".dvc/")
    for relative, text in _starter_files():
        _place(root, relative, text, result)
    _place(root, ".pre-commit-config.yaml", hooks.render_local_config(), result)
    _hooks_path(root, result)
    compiled = compile_repo(root)
    result.created += [p for p in compiled.changed if p not in result.created]
    return result


def _hooks_path(root: Path, result: Scaffolded) -> None:
    """Set core.hooksPath to hooks/ unless it names another folder: that one is the user's to
    change (the CLI asks)."""
    current = current_hooks_path(root)
    if current and current != hooks_path_for(root):
        result.other_hooks_path = current
        return
    result.hooks_path = use_hooks(root)


def _place(root: Path, relative: str, text: str, result: Scaffolded) -> None:
    target = root / relative
    if target.exists():
        result.kept.append(relative)
        return
    write_atomic(target, text)
    if relative.startswith(f"{HOOKS_DIR}/"):
        target.chmod(0o755)
    result.created.append(relative)


def _starter_files() -> list[tuple[str, str]]:
    base = resources.files("modelops_ci").joinpath("starter")
    return sorted(_walk(base, ""))


def _walk(node: Traversable, prefix: str) -> list[tuple[str, str]]:
    found = []
    for child in node.iterdir():
        name = child.name
        if name.startswith(DOT_PREFIX):
            name = "." + name[len(DOT_PREFIX):]
        relative = f"{prefix}{name}"
        if child.is_dir():
            found += _walk(child, relative + "/")
        elif not name.endswith((".pyc", ".pyo")):
            found.append((relative, child.read_text(encoding="utf-8")))
    return found


def _dvc_init(root: Path, *, subdir: bool) -> None:
    if importlib.util.find_spec("dvc") is None:
        raise MissingDependencyError(
            "dvc is not installed, and init needs it: pip install 'modelops-ci[ml]'")
    command = [sys.executable, "-m", "dvc", "init", "-q"] + (["--subdir"] if subdir else [])
    env = {**git.clean_env(), **QUIET_ENV}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise UserError(f"dvc init failed in {root}: {done.stderr.strip() or done.stdout.strip()}")
    config = root / ".dvc" / "config"
    if not config.read_text(encoding="utf-8").strip():
        write_atomic(config, DVC_CONFIG)
