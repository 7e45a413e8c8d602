"""A batched family's series in the registry (DESIGN §9): one version for the whole family, whose
evidence carries every series' model sha256 and verdict.

The per-series list is canonical: one entry per series, {series, model_sha256, verdict}, sorted by
name, as compact JSON with sorted keys; its sha256 is the family's `digest`. It is made from the
family's gates.json at the commit (in git), so verify recomputes it there. The tag lists the entries
themselves while the family has at most INLINE_SERIES series, and beyond that only the digest: every
registry tag of a version (its registration and each stage) carries the evidence again, every
`verify`, `audit` and `registry show` reads those messages, and `git show`, GitHub's tag page and the
promotion PR's body print them. At 1,000 series the list is ~110 KB per tag; the digest keeps a
message near 1 KB, and nothing is lost: the list it commits to is in git at the tagged commit.

The models themselves are DVC outputs (one folder, models/<family>/series, whose md5 dvc.lock
records): `check_models` reads each series' model from the DVC cache (which a clone fills with
`dvc pull`), checks the object against the md5 DVC recorded in the folder's listing (a byte changed
in the cache or the remote shows there) and its sha256 against the evidence, naming the series.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.family_params import SERIES, load, series_params
from modelops_ci.layout import Layout
from modelops_ci.registry.dvc_cache import cache_object, folder_listing, md5_of

BATCH_STAGE = "batch"  # the one stage of a compiled family (executor/family.py)
INLINE_SERIES = 200  # up to this many series, the tag lists them; beyond, only their digest
ENTRY_KEYS = ("series", "model_sha256", "verdict")
PULL_HINT = "`dvc pull` at that commit (or `dvc fetch --all-tags`)"


def compiled_at(root: Path, commit: str, family: str) -> tuple[bytes, dict[str, Any]]:
    """A family's compiled params at `commit`: the bytes of params.yaml and series.yaml (what the
    evidence digests) and the two joined ({} when missing)."""
    layout = Layout(family)
    params = git.show_file(root, commit, layout.params) or b""
    table = git.show_file(root, commit, layout.series_table) or b""
    return params + b"\0" + table, load(params, table)


def source_paths(params: dict[str, Any]) -> list[str]:
    """The `data.source` paths the family's series read: the shared one and any series' own."""
    found: dict[str, None] = {}
    for name in params.get(SERIES) or {}:
        source = ((series_params(params, name).get("data") or {}).get("source")) or []
        items = source if isinstance(source, list) else [source]
        found.update(dict.fromkeys(str(item["path"]) for item in items if isinstance(item, dict) and "path" in item))
    return list(found)


def entries(report: bytes | None) -> list[dict[str, Any]]:
    """The canonical per-series list of a family's gates.json: {series, model_sha256, verdict}, by name."""
    try:
        loaded = json.loads(report) if report else {}
    except ValueError:
        return []
    listed = loaded.get(SERIES) if isinstance(loaded, dict) else None
    rows = [{key: row.get(key) for key in ENTRY_KEYS} for row in listed or [] if isinstance(row, dict)]
    return sorted(rows, key=lambda row: str(row["series"]))


def digest(listed: list[dict[str, Any]]) -> str:
    """sha256 of the canonical list as compact JSON with sorted keys."""
    text = json.dumps(listed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def claim(family: str, lock: dict[str, Any], report: bytes, params: bytes) -> dict[str, Any]:
    """The evidence's `family` block: series count, failed count, digest (and the list, when short),
    the batch stage's output folders with their md5, the compiled params' sha256."""
    listed = entries(report)
    stage = (lock.get("stages") or {}).get(BATCH_STAGE) or {}
    folders = {str(o["path"]): str(o["md5"]) for o in stage.get("outs") or []
               if "md5" in o and str(o["md5"]).endswith(".dir")}
    block: dict[str, Any] = {"series": len(listed), "failed": sum(r["verdict"] != "pass" for r in listed),
                             "digest": digest(listed), "outputs": dict(sorted(folders.items())),
                             "params_sha256": hashlib.sha256(params).hexdigest()}
    if len(listed) <= INLINE_SERIES:
        block["list"] = listed
    return block


def listed_at(root: Path, family: str, commit: str, block: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-series list the evidence commits to: its own, else the commit's (checked by digest)."""
    if "list" in block:
        return list(block["list"])
    found = entries(git.show_file(root, commit, Layout(family).gates))
    if digest(found) != block.get("digest"):
        raise UserError(f"{Layout(family).gates} at {commit[:12]} does not give the series digest the evidence "
                        "names: verify the tag first (`modelops-ci verify`)")
    return found


def entry(listed: list[dict[str, Any]], family: str, name: str) -> dict[str, Any]:
    """The entry of series `name`; a UserError naming some series when the family has no such one."""
    for row in listed:
        if row["series"] == name:
            return row
    shown = ", ".join(str(r["series"]) for r in listed[:5])
    more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
    raise UserError(f"family {family} has no series '{name}' (series: {shown}{more}): name one of them")


class SeriesFileError(UserError):
    """A series' file in DVC's cache is not the one the evidence names (the message names the series)."""


def series_file(root: Path, listing: dict[str, str], folder: str, path: str, series: str) -> bytes | None:
    """The bytes of `path` (under `folder`, a family output) from DVC's cache, checked against the md5
    the folder's listing records; None when not pulled; SeriesFileError when they differ."""
    relative = str(PurePosixPath(path).relative_to(folder))
    md5 = listing.get(relative)
    if md5 is None:
        raise SeriesFileError(f"series {series}: {folder} at the commit holds no {relative}")
    raw = cache_object(root, md5)
    if raw is not None and md5_of(raw) != md5:
        raise SeriesFileError(f"series {series}: {path} in the DVC cache is not the file dvc.lock records "
                              f"(md5 {md5_of(raw)}, recorded {md5}): it was changed after it was made; "
                              "`dvc fetch` it again from a remote you trust")
    return raw


@dataclass(frozen=True)
class ModelsCheck:
    """Every (or one) series' model re-checked against the evidence: "checked", or "not-pulled"."""

    status: str
    checked: int
    reason: str


def check_models(root: Path, family: str, commit: str, block: dict[str, Any],
                 only: str | None = None) -> ModelsCheck:
    """Each series' model in DVC's cache against the sha256 the evidence names (series `only`, if given).
    SeriesFileError naming the first series whose model differs."""
    listed = listed_at(root, family, commit, block)
    chosen = [entry(listed, family, only)] if only else listed
    folder = Layout(family).series_models
    listing = folder_listing(root, str(block.get("outputs", {}).get(folder, "")))
    if listing is None:
        return ModelsCheck("not-pulled", 0, f"series models not checked: {folder} is not in the DVC cache "
                                            f"({PULL_HINT})")
    checked = 0
    for row in chosen:
        if row["model_sha256"] is None:
            continue  # the series stopped before training: its verdict says so, there is no model
        name = str(row["series"])
        raw = series_file(root, listing, folder, Layout(name, family=family).model, name)
        if raw is None:
            return ModelsCheck("not-pulled", checked, f"series models not checked: {name}'s model is not in the "
                                                      f"DVC cache ({PULL_HINT})")
        found = hashlib.sha256(raw).hexdigest()
        if found != row["model_sha256"]:
            raise SeriesFileError(f"series {name}: its model has sha256 {found}, the evidence names "
                                  f"{row['model_sha256']}")
        checked += 1
    what = f"series {only}'s model matches" if only else f"{checked} series models match"
    return ModelsCheck("checked", checked, f"{what} the evidence (sha256, from the DVC cache)")


# -- one series' lineage ------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesLineage:
    """One series of a registered family, traced: its key (rows, params, code), its own params, its
    model and verdict, the data it came from."""

    family: str
    series: str
    verdict: str
    model_sha256: str | None
    params_sha256: str  # of the series' full params, as compact JSON with sorted keys
    params: dict[str, Any]  # what this series sets differently from the family's shared params
    sources: dict[str, dict[str, str]]
    key: str | None  # sha256 of its rows, params and code (its series.json), None when not pulled
    reason: str = ""
    rows: int | None = None
    model_check: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def lineage(root: Path, family: str, commit: str, block: dict[str, Any], name: str,
            sources: dict[str, dict[str, str]]) -> SeriesLineage:
    """Series `name` of `family` at `commit`, from the evidence `block`, git and DVC's cache."""
    row = entry(listed_at(root, family, commit, block), family, name)
    _, params = compiled_at(root, commit, family)
    full = series_params(params, name)
    own = (params.get(SERIES) or {}).get(name) or {}
    text = json.dumps(full, sort_keys=True, separators=(",", ":"), default=str)
    record = _record(root, family, block, name)
    try:
        checked = check_models(root, family, commit, block, only=name).reason
    except SeriesFileError as exc:
        checked = f"REFUSED: {exc}"
    used = set(source_paths({SERIES: {name: own}, **{k: v for k, v in params.items() if k != SERIES}}))
    return SeriesLineage(family, name, str(row["verdict"]), row["model_sha256"],
                         hashlib.sha256(text.encode()).hexdigest(), dict(own),
                         {path: found for path, found in sources.items() if path in used},
                         key=record.get("key"), reason=str(record.get("reason") or ""),
                         rows=record.get("rows"), model_check=checked, metrics=dict(record.get("metrics") or {}))


def _record(root: Path, family: str, block: dict[str, Any], name: str) -> dict[str, Any]:
    """The series' series.json from DVC's cache ({} when not pulled or not the recorded file)."""
    folder = Layout(family).series_reports
    listing = folder_listing(root, str(block.get("outputs", {}).get(folder, "")))
    if listing is None:
        return {}
    try:
        raw = series_file(root, listing, folder, Layout(family).series(name).series_record, name)
    except SeriesFileError:
        return {}
    loaded = json.loads(raw) if raw else {}
    return loaded if isinstance(loaded, dict) else {}
