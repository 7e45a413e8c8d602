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


def answers(version: ServedVersion, rows: Sequence[Row]) -> list[tuple[Any, float]]:
    """The version's prediction and positive-class score for each row (one model call for all)."""
    import pandas as pd

    model = version.model
    frame = pd.DataFrame(list(rows))
    classes = [str(c) for c in model.classes_]
    wanted = str(version.card.get("positive"))
    positive = classes.index(wanted) if wanted in classes else classes.index("1")
    predictions = [p.item() if hasattr(p, "item") else p for p in model.predict(frame)]
    return list(zip(predictions, model.predict_proba(frame)[:, positive].tolist(), strict=True))


def simulate(log: PredictionLog, route: Route, rows: Sequence[Row], start: float, end: float, count: int, *,
             prefix: str, challenger_rows: Callable[[Row], Row] | None = None) -> int:
    """`count` requests evenly over [start, end), each a row of `rows` in turn; those the route gives
    the challenger may have their row changed by `challenger_rows` (to make its traffic drift).
    Returns how many the challenger answered."""
    asked: list[tuple[str, ServedVersion, Any, bool, float, Row]] = []
    step = (end - start) / count
    for n in range(count):
        request_id = f"{prefix}-{n}"
        choice = router.choose(route, request_id)
        assert choice is not None
        row = rows[n % len(rows)]
        if choice.role == "challenger" and challenger_rows is not None:
            row = challenger_rows(row)
        asked.append((request_id, choice.answer, choice.role, True, start + n * step, row))
        if choice.shadow is not None:
            asked.append((request_id, choice.shadow, "shadow", False, start + n * step, row))
    scored: dict[int, tuple[Any, float]] = {}
    for version in {id(a[1]): a[1] for a in asked}.values():
        mine = [i for i, a in enumerate(asked) if a[1] is version]
        scored.update(zip(mine, answers(version, [asked[i][5] for i in mine]), strict=True))
    log.append([_record(*a, *scored[i]) for i, a in enumerate(asked)]).result()
    return sum(a[2] == "challenger" for a in asked)


def _record(request_id: str, version: ServedVersion, role: Any, served: bool, time: float, row: Row,
            prediction: Any, score: float) -> Record:
    return Record(request_id=request_id, model=version.name, version=version.version, role=role, served=served,
                  time=time, latency_ms=3.0, status=200, error=None, features=json.dumps([row]),
                  prediction=json.dumps([prediction]), score=json.dumps([score]))
