"""A GitHub Actions matrix over the changed series of batched families (DESIGN §9).

The plan job counts the series to recompute and sizes the matrix; each shard job takes a stable
share of them (sorted by family and name, dealt round-robin) and leaves each family's share as a
bundle: `.modelops/shards/<family>/<i>/` holds the series' model and report folders and a manifest
of their keys, and reaches the merge job through the DVC remote (its `.dvc` pointer travels as a
workflow artifact). The merge job checks every expected bundle before it copies any, so a shard
that died leaves nothing half-merged.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelops_ci.errors import UserError
from modelops_ci.fsutil import write_atomic
from modelops_ci.layout import STATE_DIR, Layout

MAX_SHARDS = 256  # GitHub runs at most 256 jobs of one matrix
SERIES_PER_SHARD = 50
SHARDS_DIR = f"{STATE_DIR}/shards"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SHOWN = 10

Work = tuple[str, str]  # (family, series)


@dataclass(frozen=True)
class Shard:
    """Shard `index` (from 0) of `total`."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """`I/N` as `--shard` takes it: 0 <= I < N <= 256."""
    found = re.fullmatch(r"(\d{1,3})/(\d{1,3})", text.strip())
    if not found or not int(found[1]) < int(found[2]) <= MAX_SHARDS:
        raise UserError(f"--shard {text}: not a shard: give I/N with 0 <= I < N <= {MAX_SHARDS} "
                        "(the matrix's shard and of, e.g. 0/3)")
    return Shard(int(found[1]), int(found[2]))


def count_shards(changed: int, per_shard: int = SERIES_PER_SHARD) -> int:
    """How many shards `changed` series need: one per `per_shard` series, at least 1 (GitHub refuses
    an empty matrix), at most 256."""
    if per_shard < 1:
        raise UserError(f"--series-per-shard {per_shard}: give 1 or more")
    return max(1, min(MAX_SHARDS, math.ceil(changed / per_shard)))


def matrix(shards: int) -> dict[str, list[int]]:
    """The matrix for `strategy.matrix: ${{ fromJSON(...) }}`: every job sees its shard and how many."""
    return {"shard": list(range(shards)), "of": [shards]}


def deal(work: Iterable[Work], total: int) -> list[list[Work]]:
    """Each shard's share: the work sorted, dealt round-robin (the same on every job of a commit)."""
    shares: list[list[Work]] = [[] for _ in range(total)]
    for position, item in enumerate(sorted(work)):
        shares[position % total].append(item)
    return shares


def by_family(share: Iterable[Work]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for family, series in share:
        grouped.setdefault(family, []).append(series)
    return grouped


# -- bundles ---------------------------------------------------------------------------------------


def bundle(family: str, index: int) -> str:
    return f"{SHARDS_DIR}/{family}/{index}"


def pointer(family: str, index: int) -> str:
    """The bundle's DVC pointer (`.dvc` file): what the workflow carries from a shard to the merge."""
    return f"{bundle(family, index)}.dvc"


def _folders(layout: Layout, series: str) -> dict[str, str]:
    """Where a series' outputs live in the repository, by their name in a bundle."""
    return {"models": f"{layout.series_models}/{series}", "reports": f"{layout.series_reports}/{series}"}


def write_bundle(root: Path, family: str, shard: Shard, keys: Mapping[str, str]) -> Path:
    """Copy the series' output folders and a manifest of their keys into the shard's bundle."""
    target = root / bundle(family, shard.index)
    shutil.rmtree(target, ignore_errors=True)
    layout = Layout(family)
    for series in keys:
        for kind, folder in _folders(layout, series).items():
            if (root / folder).is_dir():
                shutil.copytree(root / folder, target / kind / series)
    manifest = {"version": MANIFEST_VERSION, "family": family, "shard": shard.index, "of": shard.total,
                "series": dict(sorted(keys.items()))}
    write_atomic(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return target


def bundle_problem(root: Path, family: str, shard: Shard, expected: Mapping[str, str]) -> str:
    """Why the shard's bundle does not hold exactly the expected series with their keys ('' if it does)."""
    where = bundle(family, shard.index)
    try:
        manifest = json.loads((root / where / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{where}/{MANIFEST} cannot be read ({exc})"
    if (manifest.get("family"), manifest.get("shard"), manifest.get("of")) != (family, shard.index, shard.total):
        return (f"{where} was made by shard {manifest.get('shard')}/{manifest.get('of')} of "
                f"{manifest.get('family')}, not by shard {shard} of {family}")
    found = manifest.get("series") or {}
    wrong = sorted(s for s in expected if found.get(s) != expected[s])
    if wrong:
        return f"{where} lacks series {shown(wrong)} (or holds them for other inputs: made by another commit?)"
    missing = sorted(s for s in expected if not (root / where / "reports" / s).is_dir())
    if missing:
        return f"{where} lacks the outputs of {shown(missing)}"
    return ""


def restore_bundle(root: Path, family: str, index: int, series: Iterable[str]) -> None:
    """Put the bundle's series folders in place of the repository's (the others are left alone)."""
    source = root / bundle(family, index)
    layout = Layout(family)
    for name in series:
        for kind, folder in _folders(layout, name).items():
            shutil.rmtree(root / folder, ignore_errors=True)
            if (source / kind / name).is_dir():
                shutil.copytree(source / kind / name, root / folder)


def shown(series: list[str]) -> str:
    """The first few names, and how many more."""
    more = f" and {len(series) - SHOWN} more" if len(series) > SHOWN else ""
    return ", ".join(series[:SHOWN]) + more
