"""One series of a batched family, start to end in memory: ingest's checks, split, train, evaluate
and every gate, the same functions the per-pipeline steps call. Two files are written, both
versioned by DVC: the model, and the series' record (its card, predictions, metrics and gate
results); the tables between steps stay in memory. A series' bad data is that series' `error`
result, never the family's stop.

It runs in a worker process (joblib, Dask): it takes plain values and returns a plain record.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci import numerics
from modelops_ci.errors import UserError
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import json_table

if TYPE_CHECKING:
    import pandas as pd

RECORD_VERSION = 2  # 2: the model's card and the predictions moved into the record
FAILED_AT = {"ingest": "data", "split": "split", "train": "train", "evaluate": "evaluate"}


@dataclass
class SeriesRecord:
    """One series' outcome, written as its `series.json`, its only file beside its model (each file
    is one more for DVC to hash on every run, copy to its cache and push): the key it was computed
    from, its verdict, metrics, model digest, every gate's full result, the model's card (what a
    pipeline's model.json holds) and the test predictions ({"columns": [...], "rows": [...]})."""

    name: str
    key: str
    verdict: str
    reason: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    model_sha256: str | None = None
    rows: int = 0
    gates: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "series": self.name, "key": self.key, "verdict": self.verdict,
                "reason": self.reason, "metrics": self.metrics, "model_sha256": self.model_sha256,
                "rows": self.rows, "gates": self.gates, "card": self.card, "predictions": self.predictions}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeriesRecord:
        return cls(str(data["series"]), str(data["key"]), str(data["verdict"]), str(data["reason"]),
                   dict(data.get("metrics") or {}), data.get("model_sha256"), int(data.get("rows") or 0),
                   list(data.get("gates") or []), data.get("card"), data.get("predictions"))


def run_series(root: Path, family: str, name: str, params: dict[str, Any], rows: pd.DataFrame,
               key: str) -> SeriesRecord:
    """Run series `name` on its source `rows`; its earlier outputs are replaced, never mixed in."""
    from modelops_ci import fsutil

    ctx = StepContext(root, name, params, family)
    fsutil.sync_once_at_the_end()  # the stage syncs every series' files before the family's verdict
    _clear(ctx)
    record = _run(ctx, rows, key)
    _write_record(ctx, record)
    return record


def _run(ctx: StepContext, rows: pd.DataFrame, key: str) -> SeriesRecord:
    from modelops_ci.steps import evaluate, gate, ingest, split, train
    from modelops_ci.steps.gate import gates_report

    stage = "ingest"
    try:
        frame, _dropped = ingest.prepare(ctx, rows)
        stage = "split"
        train_rows, test_rows = split.checked_split(ctx, frame)
        stage = "train"
        model, facts, card = train.fit_and_save_model(ctx, train_rows, _one_thread)
        stage = "evaluate"
        predictions = evaluate.predict(ctx, model, facts, test_rows)
        metrics = {**evaluate.compute_metrics(ctx, predictions, facts), **evaluate.recorded_threshold(facts)}
    except UserError as exc:
        return _failed(ctx, key, stage, str(exc))
    frames = {"dataset": frame, "train": train_rows, "test": test_rows, "predictions": predictions}
    results = [gate.evaluate(ctx, kind, frames, card).to_json() for kind in ctx.params.get("gates") or {}]
    report = gates_report(ctx.name, results, ctx.params.get("governance", {}))
    shown = {k: (v if v == v else None) for k, v in metrics.items()}
    return SeriesRecord(ctx.name, key, report["verdict"], report["reason"], shown, card["sha256"], len(frame),
                        results, card, json_table(predictions))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread for the worker: the same bytes whichever worker fits a series
    (steps/parallel.py). Entered as a fit begins: threadpoolctl limits only loaded libraries."""
    numerics.one_thread()
    yield


def _failed(ctx: StepContext, key: str, stage: str, message: str) -> SeriesRecord:
    """The series' own `error` result: what stopped it, at which step."""
    from modelops_ci.gates.result import error
    from modelops_ci.steps.gate import gates_report

    result = error(FAILED_AT[stage], f"{ctx.name}: {message}").to_json()
    report = gates_report(ctx.name, [result], ctx.params.get("governance", {}))
    _clear(ctx)
    return SeriesRecord(ctx.name, key, "fail", report["reason"], gates=[result])


def brief(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a gate result the family's report shows (the full one is in the series' folder)."""
    brief: dict[str, Any] = {k: result[k] for k in ("gate", "status", "reason", "advisory") if k in result}
    checks = [{k: c[k] for k in ("name", "status", "statistic", "ci", "threshold") if k in c}
              for c in result.get("checks") or []]
    if checks:
        brief["checks"] = checks
    return brief


def _write_record(ctx: StepContext, record: SeriesRecord) -> None:
    """Last: a series folder without its record is recomputed (a run killed half-way through it)."""
    ctx.write_json(ctx.layout.series_record, record.to_json())


def _clear(ctx: StepContext) -> None:
    for folder in (ctx.layout.reports, str(Path(ctx.layout.model).parent)):
        shutil.rmtree(ctx.path(folder), ignore_errors=True)
