"""`modelops-ci step batch FAMILY`: the one stage of a batched family (DESIGN §9).

The panel is read once. Each series is keyed by the sha256 of its own rows, its resolved params and
the code (this package, the libraries that fit and save models, the repository files the stage
depends on); a series whose key and model file match its stored record keeps its outputs, the others
run again, on every core (series.py), and series gone from the panel lose theirs. The family's
verdict then counts its failed series against the policies' `family` rules, and MLflow gets one
parent run with a child run per series that ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import family_params
from modelops_ci.errors import UserError
from modelops_ci.family_params import series_params
from modelops_ci.fsutil import write_atomic
from modelops_ci.layout import Layout
from modelops_ci.steps import parallel
from modelops_ci.steps.context import StepContext, sha256_file
from modelops_ci.steps.reads import values_under
from modelops_ci.steps.series import SeriesRecord, brief

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.ml.background import StageLogger

REPORT_VERSION = 1
LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "skops")  # what fits, scores and saves a model
SHOWN_FAILURES = 10
_LEFT_IN_THE_RECORD = ("key", "version", "card", "predictions")  # not copied into the family's gates.json


@dataclass(frozen=True)
class Family:
    """A compiled batched family: its params (shared + per series) and where its files are."""

    root: Path
    name: str
    params: dict[str, Any]

    @property
    def layout(self) -> Layout:
        return Layout(self.name)

    @property
    def series(self) -> list[str]:
        return list(self.params["series"])

    def series_params(self, name: str) -> dict[str, Any]:
        return series_params(self.params, name)

    def context(self, name: str) -> StepContext:
        return StepContext(self.root, name, self.series_params(name), self.name)


def load(root: Path, name: str) -> Family:
    layout = Layout(name)
    path, table = root / layout.params, root / layout.series_table
    if not path.is_file():
        raise UserError(f"{layout.params}: not found: run `modelops-ci compile` (is '{name}' a pipeline?)")
    params = family_params.load(path.read_bytes(), table.read_bytes() if table.is_file() else None)
    if not params.get("batch") or not params.get(family_params.SERIES):
        raise UserError(f"{layout.params}: '{name}' is not a batched family: run its steps by name")
    return Family(root.resolve(), name, params)


@dataclass(frozen=True)
class Plan:
    """What a run of the family would do, worked out without running it: the series whose key or
    model changed (`todo`, in the family's order), those whose stored outputs stand (`unchanged`),
    and the series folders no longer in the panel (`gone`); with the rows and keys a run needs."""

    family: Family
    rows: dict[str, pd.DataFrame]
    keys: dict[str, str]
    stored: dict[str, SeriesRecord]
    todo: list[str]
    unchanged: list[str]
    gone: list[str]


def plan(root: Path, name: str) -> Plan:
    """Key every series and compare the keys with the stored records (a CI matrix deals out `todo`)."""
    family = load(root, name)
    rows, digests = _rows_by_series(family)
    code = code_version(family)
    keys = {series: series_key(code, family.series_params(series), digests[series]) for series in family.series}
    stored = stored_records(family)
    todo = [s for s in family.series if not _still_valid(family, stored.get(s), keys[s])]
    unchanged = [s for s in family.series if s not in todo]
    return Plan(family, rows, keys, stored, todo, unchanged, _gone(family))


def run(root: Path, name: str, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Bring every series' outputs up to date, then write the family's verdict; `only` limits the
    series that may run (a shard of a CI matrix) without dropping the others' outputs."""
    with _family_run(root, name) as mlflow:
        planned = plan(root, name)
        family, rows, keys, stored = planned.family, planned.rows, planned.keys, planned.stored
        _remove_gone(family)
        allowed = set(family.series if only is None else only)
        todo = [s for s in planned.todo if s in allowed]
        calls = [(s, family.series_params(s), rows[s], keys[s]) for s in todo]
        ran = []
        for record in parallel.map_series(family.root, family.name, calls):
            ran.append(record)
            mlflow.log_series(record.to_json())
        os.sync()  # the series' files (written unsynced, fsutil) are on disk before the verdict on them
        records = {**stored, **{r.name: r for r in ran}}
        present = [records[s] for s in family.series if s in records]
        report, metrics = family_report(family, present), family_metrics(present)
        write_atomic(family.root / family.layout.metrics, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        write_atomic(family.root / family.layout.gates, json.dumps(report, indent=2, sort_keys=True) + "\n")
        mlflow.log_family(metrics)
    return {"series": len(family.series), "ran": len(ran), "verdict": report["verdict"]}


def collect(root: Path, name: str) -> dict[str, Any]:
    """The family's verdict again from its series' stored records (`modelops-ci gate`): nothing is
    fitted; a series without a record means the stage has not run on it."""
    family = load(root, name)
    stored = stored_records(family)
    missing = [s for s in family.series if s not in stored]
    if missing:
        raise UserError(f"{name}: {len(missing)} series have no results ({', '.join(missing[:3])}"
                        f"{', ...' if len(missing) > 3 else ''}): run `modelops-ci run {name}` first")
    present = [stored[s] for s in family.series]
    report = family_report(family, present)
    write_atomic(family.root / family.layout.gates, json.dumps(report, indent=2, sort_keys=True) + "\n")
    return {"series": len(present), "verdict": report["verdict"]}


def _family_run(root: Path, name: str) -> StageLogger:
    """The stage's MLflow runs, logged by a process of its own (`run`'s, or one started now): MLflow's
    import overlaps reading the panel, keying the series and fitting them; nothing is logged if no
    series runs."""
    from modelops_ci.ml.background import stage_logger
    from modelops_ci.ml.tracking import Tracked

    return stage_logger(Tracked(root.resolve(), name, name))


# -- the series' rows -------------------------------------------------------------------------


def _rows_by_series(family: Family) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each series' rows of its source, the sources read once, and the digest of those rows (for
    its key). When every series filters on the same columns by single values (a panel), the rows
    are grouped once; otherwise each series gets the whole source and its own filter (in
    series.py) picks its rows."""
    from modelops_ci.steps import ingest

    panels: dict[str, _Panel] = {}
    rows: dict[str, pd.DataFrame] = {}
    digests: dict[str, str] = {}
    for series in family.series:
        params = family.series_params(series)
        marker = json.dumps(params["data"]["source"], sort_keys=True, default=str)
        if marker not in panels:
            panels[marker] = _Panel(ingest.read(family.context(series)))
        rows[series], digests[series] = panels[marker].rows(params["data"].get("filter") or {})
    return rows, digests


class _Panel:
    """A source read once, and what every series picked from it needs: the groups of rows by the
    filter's columns, each row's hash, and which text values would parse as numbers."""

    def __init__(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        self.frame = frame
        self._groups: dict[tuple[str, ...], dict[Any, Any]] = {}
        self._hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        self._numeric_text = {c: _parses_as_number(frame[c]) for c in frame.columns if _is_text(frame[c])}

    def rows(self, chosen: dict[str, Any]) -> tuple[pd.DataFrame, str]:
        positions = self._positions(chosen)
        if positions is None:
            return self.frame, _rows_digest(self.frame, self._hashes)
        picked = self.frame.iloc[positions]
        if any(parses[positions].all() for parses in self._numeric_text.values()):
            alone = as_read_alone(picked)  # a text column of the panel is numbers in this series
            return alone, _rows_digest(alone)
        return picked, _rows_digest(picked, self._hashes[positions])

    def _positions(self, chosen: dict[str, Any]) -> Any:
        """The row positions of the series `chosen` picks, or None for the whole source (not a
        panel filter, or a value not found: the series' own filter then says what there is)."""
        single = all(not isinstance(v, list) for v in chosen.values())
        if not chosen or not single or not set(chosen) <= set(self.frame.columns):
            return None
        columns = tuple(sorted(chosen))
        if columns not in self._groups:
            by = list(columns) if len(columns) > 1 else columns[0]
            self._groups[columns] = self.frame.groupby(by, sort=False, dropna=False).indices
        wanted = tuple(chosen[c] for c in columns) if len(columns) > 1 else chosen[columns[0]]
        return self._groups[columns].get(wanted)


def _is_text(column: pd.Series) -> bool:
    import pandas as pd

    return bool(column.dtype == object or pd.api.types.is_string_dtype(column))


def _parses_as_number(column: pd.Series) -> Any:
    """Per row: would this text value be read as a number (missing values count as numbers)."""
    import pandas as pd

    return (pd.to_numeric(column, errors="coerce").notna() | column.isna()).to_numpy()


def as_read_alone(rows: pd.DataFrame) -> pd.DataFrame:
    """A series' rows with the column types it would have had in a file of its own: one series'
    stray text ('abc') makes the whole panel's column text when read, and must fail that series
    alone, not every series beside it."""
    import pandas as pd

    converted = {}
    for column in rows.columns:
        if _is_text(rows[column]):
            try:
                converted[column] = pd.to_numeric(rows[column])
            except (ValueError, TypeError):
                continue
    return rows.assign(**converted) if converted else rows


# -- keys ---------------------------------------------------------------------------------------


def _rows_digest(rows: pd.DataFrame, hashes: Any = None) -> str:
    """sha256 of a series' rows: their column types and each row's hash (pandas'
    hash_pandas_object, row by row, so the panel's hashes taken at the series' positions are the
    same as its own). Row positions are left out: a series added above this one in the file does
    not change it."""
    import pandas as pd

    if hashes is None:
        hashes = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in rows.dtypes.items()]).encode())
    digest.update(hashes.tobytes())
    return digest.hexdigest()


def series_key(code: str, params: dict[str, Any], rows_digest: str) -> str:
    """sha256 of what a series' outputs are computed from: the code, its params, its rows."""
    digest = hashlib.sha256(code.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(rows_digest.encode())
    return digest.hexdigest()


def code_version(family: Family) -> str:
    """sha256 of the code every series runs: this package's files, the libraries' versions, and the
    repository files the family's stage depends on (plug-ins, contracts), its data sources aside."""
    from importlib import metadata

    import modelops_ci

    digest = hashlib.sha256()
    package = Path(modelops_ci.__file__).parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for library in LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\n".encode())
    for relative in _stage_inputs(family):
        digest.update(relative.encode() + b"\0" + sha256_file(family.root / relative).encode())
    return digest.hexdigest()


def _stage_inputs(family: Family) -> list[str]:
    """The stage's deps from its dvc.yaml, without its params files and the data sources (a series'
    params and rows are in its own key)."""
    import yaml

    stages = yaml.safe_load((family.root / family.layout.stages).read_text(encoding="utf-8"))
    deps = [str(d) for d in stages["stages"]["batch"].get("deps") or []]
    sources = {str(v) for s in family.series for v in values_under(family.series_params(s), "data.source.path")}
    own = {family.layout.params, family.layout.series_table} | sources  # in each series' key already
    return [d for d in deps if d not in own and (family.root / d).is_file()]


# -- stored outputs -----------------------------------------------------------------------------


def stored_records(family: Family) -> dict[str, SeriesRecord]:
    """The records of the series the panel still has, as their folders hold them."""
    records = {}
    for series in family.series:
        path = family.root / family.layout.series(series).series_record
        try:
            records[series] = SeriesRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # none, or unreadable: the series runs again
    return records


def _still_valid(family: Family, record: SeriesRecord | None, key: str) -> bool:
    """A stored record is reused only for the same key and an intact model file (a crash or a hand
    may have changed the file after the record was written)."""
    if record is None or record.key != key:
        return False
    if record.model_sha256 is None:
        return True  # the series stopped before training: its error stands for the same inputs
    model = family.root / family.layout.series(record.name).model
    return model.is_file() and sha256_file(model) == record.model_sha256


def _gone(family: Family) -> list[str]:
    """The series folders of series no longer in the panel."""
    kept = set(family.series)
    found: set[str] = set()
    for folder in (family.layout.series_models, family.layout.series_reports):
        base = family.root / folder
        found.update(c.name for c in (base.iterdir() if base.is_dir() else ()) if c.is_dir() and c.name not in kept)
    return sorted(found)


def _remove_gone(family: Family) -> None:
    """Series no longer in the panel take their outputs with them."""
    for series in _gone(family):
        for folder in (family.layout.series_models, family.layout.series_reports):
            shutil.rmtree(family.root / folder / series, ignore_errors=True)


# -- the family's verdict -------------------------------------------------------------------------


def family_report(family: Family, records: list[SeriesRecord]) -> dict[str, Any]:
    """gates.json of the family: one `series` result counting failed series against the rules, and
    every series' verdict, worst first."""
    governance = family.params.get("governance") or {}
    rules = governance.get("family") or [{"max_failed": 0}]
    failed = [r for r in records if r.verdict == "fail"]
    allowed = min(family_params.allowed_failures(rule, len(records)) for rule in rules)
    status = "fail" if len(failed) > allowed else "pass"
    reason = _reason(failed, len(records), allowed)
    result = {"gate": "series", "status": status, "reason": reason, "statistic": len(failed),
              "threshold": {"max": allowed}, "n": len(records),
              "details": {"series": len(records), "failed": len(failed), "rules": rules}}
    ordered = sorted(records, key=lambda r: (r.verdict != "fail", _worst_status(r) != "error", r.name))
    return {"version": REPORT_VERSION, "pipeline": family.name, "verdict": status, "reason": reason,
            "policies": governance.get("policies", []), "gates": [result],
            "series": [_entry(r) for r in ordered]}


def _entry(record: SeriesRecord) -> dict[str, Any]:
    """A series in the family's gates.json: its record with brief gate results, without the key,
    the card and the predictions (in git, read by every report: kept small at 1,000 series)."""
    entry = {k: v for k, v in record.to_json().items() if k not in _LEFT_IN_THE_RECORD}
    entry["gates"] = [brief(result) for result in record.gates]
    return entry


def _reason(failed: list[SeriesRecord], total: int, allowed: int) -> str:
    if not failed:
        return f"all {total} series passed their gates"
    names = ", ".join(r.name for r in sorted(failed, key=lambda r: r.name)[:SHOWN_FAILURES])
    more = f" and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
    return f"{len(failed)} of {total} series failed (at most {allowed} may): {names}{more}"


def _worst_status(record: SeriesRecord) -> str:
    statuses = [g.get("status") for g in record.gates]
    return "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"


def family_metrics(records: list[SeriesRecord]) -> dict[str, float | int | None]:
    """The family's metrics.json: how many series, how many failed, each metric's median and mean."""
    import statistics

    metrics: dict[str, float | int | None] = {"series": len(records),
                                              "failed": sum(r.verdict == "fail" for r in records)}
    names = sorted({m for r in records for m in r.metrics})
    for metric in names:
        values = [float(v) for r in records if (v := r.metrics.get(metric)) is not None]
        metrics[f"{metric}_median"] = statistics.median(values) if values else None
        metrics[f"{metric}_mean"] = statistics.fmean(values) if values else None
    return metrics
