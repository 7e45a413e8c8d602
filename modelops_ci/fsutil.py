"""Writing files so that a crash never leaves one half-written."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from modelops_ci.errors import DiskFullError, is_disk_full


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp file beside `path` to write; it replaces `path` in one step if the block succeeds
    and is removed if it fails, so readers see the old file or the new one, never half of one.

    A full disk (ENOSPC, EDQUOT) is the user's to fix: it becomes a DiskFullError naming `path`."""
    with _disk_full_names(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        temp = Path(name)
        try:
            yield temp
            temp.chmod(mode)  # mkstemp makes 0600; a written file is as readable as any other
            temp.replace(path)
        finally:
            temp.unlink(missing_ok=True)


@contextlib.contextmanager
def _disk_full_names(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(path) from exc


_each_file_synced = True  # see sync_once_at_the_end


def sync_once_at_the_end() -> None:
    """From now on, this process's writes are atomic but not synced one by one: its owner syncs
    them all at once (`os.sync()`) before it writes what depends on them. A batched stage's workers
    write ~2,000 small files per 300 series, and a sync each cost 2-4 s there."""
    global _each_file_synced
    _each_file_synced = False


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8, LF line ends), atomically and durably."""
    with replacing(path) as temp, temp.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        _sync(handle)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with replacing(path) as temp, temp.open("wb") as handle:
        handle.write(data)
        _sync(handle)


def _sync(handle: IO[Any]) -> None:
    handle.flush()
    if _each_file_synced:
        os.fsync(handle.fileno())


def remove_leftover_temps(path: Path) -> list[Path]:
    """Remove the temp files that writes of `path` killed before they finished (SIGKILL, power
    loss) left beside it. Only call it while nothing else can be writing `path`."""
    pattern = f".{glob.escape(path.name)}.*.tmp"
    leftovers = sorted(path.parent.glob(pattern))
    if path.is_dir():  # a directory output: its files were written one by one inside it
        leftovers += sorted(path.rglob(".*.tmp"))
    for temp in leftovers:
        temp.unlink(missing_ok=True)
    return leftovers


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
