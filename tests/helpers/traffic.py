"""Simulated traffic for the roll-out tests: requests spread over a span of (simulated) time, each routed
by the server's own router and answered by the real served models, written to a real prediction log as
the server writes them. The times are chosen, never the clock's, so no timing decides a test."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from modelops_ci.serve import router
from modelops_ci.serve.predlog import PredictionLog
from modelops_ci.serve.records import Record
from modelops_ci.serve.state import Route, ServedVersion

Row = dict[str, Any]


def answer(version: ServedVersion, row: Row) -> tuple[Any, float]:
    """The version's prediction and positive-class score for one row."""
    import pandas as pd

    model = version.model
    frame = pd.DataFrame([row])
    classes = [str(c) for c in model.classes_]
    positive = classes.index(str(version.card.get("positive"))) if str(version.card.get("positive")) in classes \
        else classes.index("1")
    prediction = model.predict(frame)[0]
    return (prediction.item() if hasattr(prediction, "item") else prediction), float(
        model.predict_proba(frame)[0, positive])


def simulate(log: PredictionLog, route: Route, rows: Sequence[Row], start: float, end: float, count: int, *,
             prefix: str, challenger_rows: Callable[[Row], Row] | None = None) -> int:
    """`count` requests evenly over [start, end), each a row of `rows` in turn; those the route gives
    the challenger may have their row changed by `challenger_rows` (to make its traffic drift).
    Returns how many the challenger answered."""
    records: list[Record] = []
    to_challenger = 0
    step = (end - start) / count
    for n in range(count):
        request_id = f"{prefix}-{n}"
        choice = router.choose(route, request_id)
        assert choice is not None
        row = rows[n % len(rows)]
        if choice.role == "challenger" and challenger_rows is not None:
            row = challenger_rows(row)
        to_challenger += choice.role == "challenger"
        records.append(_record(request_id, choice.answer, choice.role, True, start + n * step, row))
        if choice.shadow is not None:
            records.append(_record(request_id, choice.shadow, "shadow", False, start + n * step, row))
    log.append(records).result()
    return to_challenger


def _record(request_id: str, version: ServedVersion, role: Any, served: bool, time: float, row: Row) -> Record:
    prediction, score = answer(version, row)
    return Record(request_id=request_id, model=version.name, version=version.version, role=role, served=served,
                  time=time, latency_ms=3.0, status=200, error=None, features=json.dumps([row]),
                  prediction=json.dumps([prediction]), score=json.dumps([score]))
