"""The batch join: labels known later, from a CSV or Parquet file, into the prediction log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError
from modelops_ci.serve.predlog import PredictionLog, logged_request_ids
from modelops_ci.serve.records import Feedback

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("request_id", "label")
SHOWN = 5  # unknown request ids named in the message; the rest are counted


def join_feedback(path: Path, table: Path, *, rotated: Path | None = None) -> int:
    """Add the labels in `table` (columns request_id, label and optionally row, default 0) to the log
    at `path`; returns how many. Labels of requests neither the log nor `rotated` holds are not
    added: the others are, then a UserError counts and names them."""
    if not path.exists():
        raise UserError(f"{path}: no prediction log there: give the path the server logs to")
    frame = _load(table)
    items = _feedback(frame, table)
    known = logged_request_ids(path, rotated, {item.request_id for item in items})
    joined = [item for item in items if item.request_id in known]
    with PredictionLog.open(path) as log:
        log.add_feedback(joined).result()
    unknown = [number for number, item in enumerate(items) if item.request_id not in known]
    if unknown:
        raise UserError(_unknown_message(table, items, unknown, len(joined)))
    return len(joined)


def _load(table: Path) -> pd.DataFrame:
    import pandas as pd

    if not table.exists():
        raise UserError(f"{table}: no such file: give a CSV or Parquet file of labels")
    if table.suffix == ".csv":
        frame = pd.read_csv(table, dtype={"request_id": str})
    elif table.suffix == ".parquet":
        frame = pd.read_parquet(table)
    else:
        raise UserError(f"{table}: not a .csv or .parquet file: give the labels in one of those")
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise UserError(f"{_where(table, None)}: no column {', '.join(missing)}: the file needs columns "
                        "request_id and label, and row (the row of the request, 0 if left out) if requests had several")
    if "row" not in frame.columns:
        frame["row"] = 0
    return frame


def _feedback(frame: pd.DataFrame, table: Path) -> list[Feedback]:
    now = time.time()
    values = zip(frame["request_id"].tolist(), frame["row"].tolist(), frame["label"].tolist(), strict=True)
    return [_item(table, number, request_id, row, label, now)
            for number, (request_id, row, label) in enumerate(values)]


def _item(table: Path, number: int, request_id: Any, row: Any, label: Any, now: float) -> Feedback:
    where = _where(table, number)
    if _missing(request_id) or _missing(label):
        raise UserError(f"{where}: no request_id or no label: give both on every row")
    if _missing(row) or float(row) != int(row) or int(row) < 0:
        raise UserError(f"{where}: row {row!r} is not a row number: give the request's row, counted from 0")
    return Feedback(str(request_id), int(row), json.dumps(label), now)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN: an empty CSV cell


def _where(table: Path, number: int | None) -> str:
    """`file:line` of a CSV row (its header is line 1), `file: row N` of a Parquet one (from 1)."""
    if number is None:
        return str(table)
    if table.suffix == ".csv":
        return f"{table}:{number + 2}"
    return f"{table}: row {number + 1}"


def _unknown_message(table: Path, items: list[Feedback], unknown: list[int], joined: int) -> str:
    first = items[unknown[0]]
    others = ", ".join(_where(table, number).removeprefix(str(table)).lstrip(":").strip()
                       for number in unknown[1:SHOWN])
    more = f" (also {others}" + (f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else "") + ")"
    return (f"{_where(table, unknown[0])}: request id {first.request_id!r} was never logged; "
            f"{len(unknown)} label(s) of requests never logged{more if others else ''} were left out and "
            f"the other {joined} joined: check the request ids, and give the rotated log files if the "
            "requests are older than the last rotation")


MAX_LABELS = 1000  # labels in one POST /v1/feedback


def labels_posted(body: bytes, now: float) -> list[Feedback]:
    """The labels of a `POST /v1/feedback` body: `{"request_id": ID, "label": X}` (row 0),
    `{"request_id": ID, "labels": [X, ...]}` (rows 0, 1, ...), or `{"feedback": [{"request_id": ID,
    "row": N, "label": X}, ...]}`; a label is a JSON scalar, as predictions are. BadRequest (422) says
    what is wrong, where."""
    from modelops_ci.serve.signature import BadRequest

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not JSON ({exc})") from None
    items = _items(data)
    if not items or len(items) > MAX_LABELS:
        raise BadRequest(422 if not items else 413, f"send 1 to {MAX_LABELS} labels, not {len(items)}")
    return [_label(item, f"feedback[{n}]", now) for n, item in enumerate(items)]


def _items(data: Any) -> list[Any]:
    from modelops_ci.serve.signature import BadRequest

    if isinstance(data, dict) and isinstance(data.get("feedback"), list):
        return list(data["feedback"])
    if isinstance(data, dict) and isinstance(data.get("labels"), list):
        return [{"request_id": data.get("request_id"), "row": n, "label": x} for n, x in enumerate(data["labels"])]
    if isinstance(data, dict) and "label" in data:
        return [{"request_id": data.get("request_id"), "row": data.get("row", 0), "label": data["label"]}]
    raise BadRequest(422, 'expected {"request_id": ..., "label": ...}, {"request_id": ..., "labels": [...]} or '
                          '{"feedback": [{"request_id": ..., "row": ..., "label": ...}]}')


def _label(item: Any, where: str, now: float) -> Feedback:
    from modelops_ci.serve.router import sane_request_id
    from modelops_ci.serve.signature import BadRequest

    if not isinstance(item, dict):
        raise BadRequest(422, f"{where}: expected an object with request_id, row and label")
    request_id, row, label = item.get("request_id"), item.get("row", 0), item.get("label")
    if not isinstance(request_id, str) or not sane_request_id(request_id):
        raise BadRequest(422, f"{where}.request_id: expected the id an answer carried (<= 128 of A-Z a-z 0-9 . _ -)")
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < MAX_LABELS:
        raise BadRequest(422, f"{where}.row: expected the row's index in its request, 0 to {MAX_LABELS - 1}")
    if isinstance(label, dict | list) or label is None or (isinstance(label, float) and label != label):
        raise BadRequest(422, f"{where}.label: expected a number, a string or a boolean")
    return Feedback(request_id, row, json.dumps(label), now)
