"""Reading DVC outputs at a commit from the local DVC cache (what `dvc pull` or `dvc fetch` fills),
by the md5 dvc.lock records: a file by its md5, a folder by its `.dir` listing.

The cache is a folder anyone with the clone can write, so whoever reads bytes here checks them
against the md5 they were asked for (a listing is checked here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CACHE = (".dvc", "cache", "files", "md5")  # DVC 3's default cache layout


def cache_object(root: Path, md5: str) -> bytes | None:
    """The bytes the local cache holds under `md5` (a file's md5, or a folder's `X.dir`), None if absent."""
    path = root.joinpath(*CACHE, md5[:2], md5[2:])
    return path.read_bytes() if path.is_file() else None


def md5_of(raw: bytes) -> str:
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def folder_listing(root: Path, md5: str) -> dict[str, str] | None:
    """relpath -> md5 of the output folder whose md5 is `md5` (`X.dir`); None when the cache lacks
    its listing or holds another one under that name (as good as absent)."""
    bare = md5.removesuffix(".dir")
    raw = cache_object(root, bare + ".dir")
    if raw is None or md5_of(raw) != bare:
        return None
    return {str(item["relpath"]): str(item["md5"]) for item in json.loads(raw)}
