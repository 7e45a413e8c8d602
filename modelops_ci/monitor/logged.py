"""Logged rows: one row per scored row, what monitoring windows are cut from.

    model, version, role, time, request_id, row, <each feature>, prediction, score, label

From the server's prediction log (`from_records`, on `serve.predlog.read`'s frame: every answered
record of a model version, champion, challenger and shadow alike, its JSON lists flattened), or
from a Parquet or CSV file of such rows written by anything else (`from_file`).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.errors import UserError
from modelops_ci.rollout.traffic import parse_lists

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("model", "version", "time")
RECORD_KEYS = ("model", "version", "role", "time", "request_id")


def from_records(records: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The answered records' rows, flattened: `features` as columns (absent in a row: missing)."""
    import pandas as pd

    answered = records[(records["status"] < 400) & records["version"].notna()].reset_index(drop=True)
    feature_lists = parse_lists(answered["features"].to_numpy(dtype=object))
    lengths = np.fromiter(map(len, feature_lists), dtype=np.int64, count=len(feature_lists))
    owner = np.repeat(np.arange(len(answered)), lengths)
    flat = [row if isinstance(row, dict) else {} for row in itertools.chain.from_iterable(feature_lists)]
    columns: dict[str, Any] = {key: answered[key].to_numpy(dtype=object)[owner] for key in RECORD_KEYS}
    columns["time"] = columns["time"].astype(float)
    columns["row"] = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, dtype=int)
    for name in features:
        columns[name] = [row.get(name) for row in flat]
    for column in ("prediction", "score", "label"):
        columns[column] = _aligned(answered, column, lengths)
    return pd.DataFrame(columns)


def _aligned(records: pd.DataFrame, column: str, lengths: np.ndarray) -> list[Any]:
    """A JSON list column's items, one per flattened row (None where a record has fewer)."""
    if column not in records.columns:
        return [None] * int(lengths.sum())
    texts = records[column].to_numpy(dtype=object)
    lists = parse_lists(np.array([text if isinstance(text, str) and text else "[]" for text in texts], dtype=object))
    return [items[index] if index < len(items) else None
            for items, count in zip(lists, lengths, strict=True) for index in range(count)]


def from_file(path: Path) -> pd.DataFrame:
    """Logged rows from a Parquet or CSV file; UserError naming the file and what is wrong."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise UserError(f"{path}: logged rows are read from a .parquet or .csv file, not {suffix or 'no suffix'}")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the logged rows ({exc})") from exc
    absent = [name for name in REQUIRED if name not in frame.columns]
    if absent:
        raise UserError(f"{path}: the logged rows have no {', '.join(absent)} column: each row needs the model, "
                        "the version that answered and the time (unix seconds)")
    times = pd.to_numeric(frame["time"], errors="coerce")
    if times.isna().any():
        first = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise UserError(f"{path}: row {first + 1}: time {frame['time'].iloc[first]!r} is not unix seconds")
    return frame.assign(time=times.astype(float), model=frame["model"].astype(str),
                        version=frame["version"].astype(str))


def missing_features(rows: pd.DataFrame, features: list[str]) -> list[str]:
    """The features a model needs that the logged rows have no column for."""
    return [name for name in features if name not in rows.columns]
