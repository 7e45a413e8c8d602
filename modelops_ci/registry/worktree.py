"""A clean temporary `git worktree` at a commit, and DVC in it with the trusted checkout's cache and
remotes: where the recomputed gates run (registry/recompute.py) and where a retraining PR's data
snapshot is tracked (commands/monitor_traffic.py). Never the user's work tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.offline import QUIET_ENV

# Never handed to DVC or a stage: it reads data and runs pipeline code, and needs no key or token.
WITHHELD_ENV = ("MODELOPS_SIGNING_KEY", "GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_RUNTIME_TOKEN",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL")


@contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of `commit` in a temporary folder, removed afterwards whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="modelops-worktree-"))
    tree = folder / "tree"
    # No hook runs on the checkout: the worktree is data, nothing else.
    added = git.run("-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet", str(tree), commit,
                    cwd=root, check=False)
    try:
        if added.returncode != 0:
            raise UserError(f"cannot check out {commit[:12]} in a temporary worktree: {added.stderr.strip()}")
        yield tree
    finally:
        git.run("worktree", "remove", "--force", str(tree), cwd=root, check=False)
        shutil.rmtree(folder, ignore_errors=True)
        git.run("worktree", "prune", cwd=root, check=False)


def share_dvc_state(root: Path, tree: Path) -> None:
    """The worktree uses the trusted checkout's cache (what it holds is not pulled again) and its
    remotes, re-hashing what it downloads: the commit's own DVC config names no source of data."""
    from dvc.config import Config
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as trusted:
            cache_dir = str(trusted.cache.local_cache_dir)
            remotes = {name: {**dict(options), "verify": True} for name, options in trusted.config["remote"].items()}
            default = trusted.config["core"].get("remote")
    except DvcException as exc:
        raise UserError(f"{root} is not a DVC repository ({exc})") from None
    with Config(dvc_dir=str(tree / ".dvc")).edit("local") as local:
        local["cache"]["dir"] = cache_dir
        local["remote"] = remotes
        if default:
            local["core"]["remote"] = default


def run_dvc(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dvc ARGS` in `tree` with this tool's DVC, in `stage_env()`."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tree, env=stage_env(), capture_output=True,
                          text=True, check=False)


def stage_env() -> dict[str, str]:
    """The environment of DVC and the gate steps: quiet, this tool first on PATH, no secrets (a DVC
    remote's own credentials, AWS_* and the like, stay)."""
    env = {k: v for k, v in git.clean_env().items() if k not in WITHHELD_ENV}
    here = str(Path(sys.executable).parent)
    return {**env, **QUIET_ENV, "PATH": here + os.pathsep + env.get("PATH", "")}
