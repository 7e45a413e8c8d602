"""Reading DVC outputs at a commit from the local DVC cache (what `dvc pull` or `dvc fetch` fills),
by the md5 dvc.lock records: a file by its md5, a folder by its `.dir` listing.

The cache is a folder anyone with the clone can write, so whoever reads bytes here checks them
against the md5 they were asked for (a listing is checked here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def read_output(root: Path, relative: str, commit: str, md5: str) -> bytes:
    """The bytes of DVC output `relative` as committed at `commit`, which must hash to `md5` (the
    verified evidence's): from the local cache, else through DVC from the remote. Bytes that hash
    otherwise are refused: the cache is anyone's to write."""
    from modelops_ci.errors import MissingDependencyError, UserError

    raw = cache_object(root, md5)
    if raw is None:
        try:
            import dvc.api
            from dvc.exceptions import DvcException
        except ImportError:
            raise MissingDependencyError("reading a model from DVC needs DVC: pip install 'modelops-ci[ml]'") from None
        try:
            raw = bytes(dvc.api.read(relative, repo=str(root), rev=commit, mode="rb"))
        except (DvcException, OSError) as exc:
            raise UserError(f"cannot read {relative} at {commit[:12]} from DVC ({type(exc).__name__}: {exc}): "
                            "`dvc push` it from where it was trained, or make the DVC remote reachable") from None
    if md5_of(raw) != md5:
        raise UserError(f"{relative} read for {commit[:12]} has md5 {md5_of(raw)}, not {md5} (its verified "
                        "evidence's): refusing it; remove the damaged object from .dvc/cache and fetch it again")
    return raw


def load_model_at(root: Path, pipeline: str, commit: str, digests: dict[str, str], *,
                  extra_types: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """`pipeline`'s model and card as committed at `commit`, read by their md5s (`digests`: path ->
    md5, from that commit's dvc.lock), then loaded as model_store loads: sha256 checked against the
    card, only the audited types plus `extra_types`. Every failure is a UserError saying which."""
    import tempfile

    from modelops_ci.errors import UserError
    from modelops_ci.layout import Layout
    from modelops_ci.ml.model_store import load

    layout = Layout(pipeline)
    wanted = (layout.model, layout.model_card)
    missing = [relative for relative in wanted if not digests.get(relative)]
    if missing:
        raise UserError(f"{layout.lock} at {commit[:12]} records no {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="modelops-model-") as folder:
        local = {relative: Path(folder) / Path(relative).name for relative in wanted}
        for relative in wanted:
            local[relative].write_bytes(read_output(root, relative, commit, digests[relative]))
        return load(local[layout.model], local[layout.model_card], extra_types=extra_types)
