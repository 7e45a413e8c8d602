"""Tumbling windows over logged rows, per model and version: by time (aligned to the clock, so that
hour windows are clock hours and merge into days) or by a count of rows.

    spec = parse("1h")            # or "15m", "1d", "10000 rows"
    for window in tumbling(rows, spec):
        rows.iloc[window.rows]    # one model version's rows in [window.start, window.end)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|rows?)\s*$")


@dataclass(frozen=True)
class WindowSpec:
    by: Literal["time", "rows"]
    size: float  # seconds, or rows

    def __str__(self) -> str:
        if self.by == "rows":
            return f"{self.size:g} rows"
        unit = next(u for u in ("w", "d", "h", "m", "s") if self.size % UNITS[u] == 0 or u == "s")
        return f"{self.size / UNITS[unit]:g}{unit}"


def parse(text: str) -> WindowSpec:
    """`30m`, `1h`, `1d`, `1w` (tumbling windows of that time) or `5000 rows`; ValueError otherwise."""
    found = _SPEC.match(str(text))
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"window '{text}': give a time such as 15m, 1h or 1d, or a count such as 5000 rows")
    amount, unit = float(found.group(1)), found.group(2)
    if unit.startswith("row"):
        if amount != int(amount):
            raise ValueError(f"window '{text}': a count of rows is a whole number")
        return WindowSpec("rows", amount)
    return WindowSpec("time", amount * UNITS[unit])


@dataclass(frozen=True)
class Window:
    model: str
    version: str
    start: float  # unix seconds, inclusive
    end: float  # unix seconds, exclusive
    rows: slice  # positions in the frame `tumbling` was given (sorted by model, version, time)

    @property
    def size(self) -> int:
        return int(self.rows.stop - self.rows.start)


def ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` sorted as `tumbling` needs them: by model, version and time (stable)."""
    return rows.sort_values(["model", "version", "time"], kind="stable").reset_index(drop=True)


def tumbling(rows: pd.DataFrame, spec: WindowSpec) -> list[Window]:
    """The windows of `rows` (sorted by `ordered`), each model version's in time order."""
    windows: list[Window] = []
    keys = list(zip(rows["model"].astype(str), rows["version"].astype(str), strict=True))
    times = rows["time"].to_numpy(dtype=float)
    start = 0
    for end in [*_changes(keys), len(keys)]:
        if end > start:
            model, version = keys[start]
            windows += _of_version(model, version, times, start, end, spec)
        start = end
    return windows


def _changes(keys: list[tuple[str, str]]) -> list[int]:
    return [index for index in range(1, len(keys)) if keys[index] != keys[index - 1]]


def _of_version(model: str, version: str, times: np.ndarray, first: int, stop: int, spec: WindowSpec) -> list[Window]:
    span = times[first:stop]
    if spec.by == "rows":
        size = int(spec.size)
        bounds = list(range(0, len(span), size))
        return [Window(model, version, float(span[low]), math.nextafter(float(span[min(low + size, len(span)) - 1]),
                                                                          math.inf),
                       slice(first + low, first + min(low + size, len(span)))) for low in bounds]
    index = np.floor(span / spec.size).astype(np.int64)
    cuts = np.flatnonzero(np.diff(index)) + 1
    lows, highs = np.r_[0, cuts], np.r_[cuts, len(span)]
    return [Window(model, version, float(index[low] * spec.size), float((index[low] + 1) * spec.size),
                   slice(first + int(low), first + int(high))) for low, high in zip(lows, highs, strict=True)]
