"""A predict request's rows checked against the model's card, and the frame the model takes.

The body is `{"rows": [{feature: value, ...}, ...]}` (or `{"row": {...}}` for one). Each row names
exactly the card's features: numeric ones take a number or null (the pipelines impute a missing
value), categorical ones a string or null. Whatever is wrong is a `BadRequest` whose message says
what and where (`rows[3].Income: expected a number, got "abc"`); the app answers it with its status.
Rows are checked per request in plain Python; the pandas frame is built once per batch, off the loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

Row = dict[str, Any]
MAX_ROWS = 1000
MAX_BYTES = 1 << 20  # 1 MiB
MAX_PROBLEMS = 5  # a body with many wrong values: the first few say enough
JSON_TYPES = ("application/json",)


class BadRequest(UserError):
    """A request the server refuses before any model scores it; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """How much one request may carry."""

    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES


@dataclass(frozen=True)
class Signature:
    """The features a model takes, in the order it was trained on (numeric, then categorical)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @classmethod
    def of(cls, card: Mapping[str, Any]) -> Signature:
        return cls(tuple(card.get("numeric") or ()), tuple(card.get("categorical") or ()))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


def check_content_type(value: str | None) -> None:
    """Refuse a body that does not say it is JSON (415)."""
    kind = (value or "").split(";", 1)[0].strip().lower()
    if kind not in JSON_TYPES:
        shown = f"'{value}'" if value else "none"
        raise BadRequest(415, f"Content-Type {shown}: send the rows as JSON with Content-Type: application/json")


def check_length(value: str | None, limits: Limits) -> None:
    """Refuse a body whose declared length is over the limit before reading it (413)."""
    if value is None:
        return
    if not value.isdigit():
        raise BadRequest(400, f"Content-Length '{value}' is not a number of bytes")
    if int(value) > limits.max_bytes:
        raise too_large(int(value), limits)


def too_large(size: int, limits: Limits) -> BadRequest:
    """413 for a body of (at least) `size` bytes."""
    return BadRequest(413, f"the body is over the limit of {limits.max_bytes} bytes ({size} or more): "
                           "send fewer rows per request")


def rows_of(body: bytes, signature: Signature, limits: Limits) -> list[Row]:
    """The request's rows, each checked against `signature`."""
    if len(body) > limits.max_bytes:
        raise too_large(len(body), limits)
    rows = _rows_in(_document(body))
    if len(rows) > limits.max_rows:
        raise BadRequest(413, f"rows: {len(rows)} rows, over the limit of {limits.max_rows}: "
                              "split them over several requests")
    problems: list[str] = []
    for index, row in enumerate(rows):
        problems += _row_problems(index, row, signature)
    if problems:
        more = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS] + ([f"and {more} more"] if more > 0 else [])
        raise BadRequest(422, "; ".join(shown))
    return rows


def _document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not UTF-8 text: send JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _rows_in(document: Any) -> list[Any]:
    if isinstance(document, dict) and set(document) == {"rows"} and isinstance(document["rows"], list):
        rows: list[Any] = document["rows"]
        if not rows:
            raise BadRequest(422, "rows: the list is empty: send at least one row")
        return rows
    if isinstance(document, dict) and set(document) == {"row"}:
        return [document["row"]]
    raise BadRequest(422, 'the body must be {"rows": [{feature: value, ...}, ...]} or {"row": {feature: value, ...}}')


def _row_problems(index: int, row: Any, signature: Signature) -> list[str]:
    where = f"rows[{index}]"
    if not isinstance(row, dict):
        return [f"{where}: expected an object of feature values, got {_shown(row)}"]
    problems = _column_problems(where, row, signature)
    for name in signature.numeric:
        why = _number_problem(row.get(name))
        if why:
            problems.append(f"{where}.{name}: {why}")
    for name in signature.categorical:
        why = _category_problem(row.get(name))
        if why:
            problems.append(f"{where}.{name}: {why}")
    return problems


def _column_problems(where: str, row: Row, signature: Signature) -> list[str]:
    wanted = signature.columns
    if len(row) == len(wanted) and all(name in row for name in wanted):
        return []
    unknown = [name for name in row if name not in wanted]
    missing = [name for name in wanted if name not in row]
    problems = [f"{where}: unknown column '{name}' (the model takes: {', '.join(wanted)})" for name in unknown]
    problems += [f"{where}: missing column '{name}' (send null for a missing value)" for name in missing]
    return problems


def _number_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_shown(value)}"
    if not math.isfinite(value):
        return f"expected a finite number, got {value}"
    return None


def _category_problem(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return None
    return f"expected a string (a category), got {_shown(value)}"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def frame(rows: Sequence[Row], signature: Signature) -> pd.DataFrame:
    """One frame of checked rows in the card's column order: numbers as float64 (null: NaN),
    categories as strings (null: NaN, which the pipelines' imputers fill)."""
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in signature.numeric:
        columns[name] = np.array([row[name] for row in rows], dtype=float)
    for name in signature.categorical:
        columns[name] = np.array([np.nan if row[name] is None else row[name] for row in rows], dtype=object)
    return pd.DataFrame(columns, columns=list(signature.columns))
