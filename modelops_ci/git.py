"""Small git wrappers. Subprocesses get a clean environment: no GIT_DIR & co. leaked from a
caller such as pre-commit, which would point git at another repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_KEPT_GIT_VARS = ("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_NOSYSTEM", "GIT_SSH", "GIT_TERMINAL_PROMPT")


def clean_env() -> dict[str, str]:
    """os.environ without the GIT_* variables that redirect git to another repository."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("GIT_") or k.startswith(_KEPT_GIT_VARS)}


def run(*args: str, cwd: Path, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          check=check, input=stdin)


def toplevel(path: Path) -> Path | None:
    """The root of the work tree containing `path`, or None outside any."""
    result = run("rev-parse", "--show-toplevel", cwd=path, check=False)
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def init(path: Path) -> None:
    run("init", "-q", cwd=path)
