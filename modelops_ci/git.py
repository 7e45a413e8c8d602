"""Small git wrappers. Subprocesses get a clean environment: no GIT_DIR & co. leaked from a
caller such as pre-commit, which would point git at another repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from modelops_ci.errors import UserError

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


class GitError(UserError):
    """git cannot read what was asked of it (not a repository, a broken object store)."""


def show_file(root: Path, rev: str, path: str) -> bytes | None:
    """The content of `path` at `rev` (a commit, branch or tag), None when it holds no such file.

    The one way to read a file at a commit: through `cat_files`, so `rev` reaches git on stdin,
    never as an argument it could read as an option."""
    found = cat_typed(root, [f"{rev}:{path}"])[f"{rev}:{path}"]
    return found[1] if found is not None and found[0] == "blob" else None


def cat_files(root: Path, names: list[str]) -> dict[str, bytes | None]:
    """The raw content of each object (`rev:path`, a ref, an id), None when missing."""
    return {name: typed[1] if typed else None for name, typed in cat_typed(root, names).items()}


def cat_typed(root: Path, names: list[str]) -> dict[str, tuple[str, bytes] | None]:
    """Each object's type (`tag`, `commit`, `blob`, ...) and raw content, in one `git cat-file --batch`."""
    if not names:
        return {}
    if any("\n" in name for name in names):
        raise GitError("a git object name holds a newline: refusing to read it")
    done = subprocess.run(["git", "cat-file", "--batch"], cwd=root, env=clean_env(), check=False,
                          input="".join(n + "\n" for n in names).encode(), capture_output=True)
    if done.returncode != 0:
        raise GitError(f"{root}: git cat-file failed ({done.stderr.decode().strip()}): run inside a git repository")
    found: dict[str, tuple[str, bytes] | None] = {}
    out, at = done.stdout, 0
    for name in names:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        if header[-1] in (b"missing", b"ambiguous"):
            found[name], at = None, end + 1
            continue
        size = int(header[2])
        found[name] = (header[1].decode(), out[end + 1:end + 1 + size])
        at = end + 1 + size + 1  # content is followed by a newline
    return found
