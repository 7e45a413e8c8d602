"""The logged traffic a roll-out analysis reads: the champion's and the challenger's records in the
analysed span, cut into intervals, with their JSON columns parsed only when a metric asks.

Parsing is what an analysis costs (features are a JSON list of row objects per record), so each
column of each side is parsed once, in one `json.loads` over all of its records, and kept with the
record each row came from; an interval then takes its rows by position, not by parsing again.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.spec.deployment import ModelDeployment


@dataclass(frozen=True)
class Window:
    """One interval of the analysed span: [start, end), and its records on each side (positions)."""

    index: int
    start: float
    end: float
    complete: bool  # ended by `now`; the one still running is shown, not judged
    challenger: slice
    champion: slice


@dataclass(frozen=True)
class Parsed:
    """A JSON list column of a side's answered records: per record its list, and the rows flattened
    with the position of the record each came from (rising, so an interval's rows are one slice)."""

    lists: list[list[Any]]
    owner: np.ndarray  # per answered record, its position among the side's records
    flat: list[Any]
    row_owner: np.ndarray  # per flattened row, its record's position

    def records_in(self, records: slice) -> slice:
        """The answered records among positions `records`, as a slice of `lists`."""
        low, high = np.searchsorted(self.owner, [records.start, records.stop])
        return slice(int(low), int(high))

    def rows_in(self, records: slice) -> slice:
        """The flattened rows of the records at positions `records`, as a slice of `flat`."""
        low, high = np.searchsorted(self.row_owner, [records.start, records.stop])
        return slice(int(low), int(high))


class Side:
    """One version's records in the span (sorted by time), and its columns parsed on demand."""

    def __init__(self, records: pd.DataFrame) -> None:
        self.records = records.sort_values("time", kind="stable").reset_index(drop=True)
        self.times = self.records["time"].to_numpy(dtype=float)
        self.status = self.records["status"].to_numpy(dtype=int)
        self.answered = self.status < 400
        # A 4xx is the caller's fault (bad rows, a body too big): it says nothing about the model, so it
        # counts neither as an error nor as a sample.
        self.judged = (self.status < 400) | (self.status >= 500)
        self.latency_ms = self.records["latency_ms"].to_numpy(dtype=float)
        self.ids = self.records["request_id"].astype(str).to_numpy(dtype=object)
        self._parsed: dict[str, Parsed] = {}

    def __len__(self) -> int:
        return len(self.records)

    def between(self, start: float, end: float) -> slice:
        low, high = np.searchsorted(self.times, [start, end], side="left")
        return slice(int(low), int(high))

    def parsed(self, column: str) -> Parsed:
        """`column` (features, prediction or score) of the answered records, parsed once."""
        if column not in self._parsed:
            owner = np.flatnonzero(self.answered)
            lists = parse_lists(self.records[column].to_numpy(dtype=object)[owner])
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            flat = list(itertools.chain.from_iterable(lists))
            self._parsed[column] = Parsed(lists, owner, flat, np.repeat(owner, lengths))
        return self._parsed[column]

    def request_ids(self, records: slice) -> list[str]:
        """The request ids of the answered records among `records`, in `parsed(...).lists` order."""
        parsed = self.parsed("prediction")
        ids: list[str] = self.ids[parsed.owner[parsed.records_in(records)]].tolist()
        return ids


class Traffic:
    """The champion's and the challenger's records in the analysed span, and the labels known so far."""

    def __init__(self, challenger: Side, champion: Side, records: pd.DataFrame) -> None:
        self.challenger = challenger
        self.champion = champion
        self._records = records  # all of the model's records in the span, for the labels
        self._labels: dict[str, list[Any]] | None = None

    def labels(self) -> dict[str, list[Any]]:
        """Request id -> its rows' true labels (None where not known), parsed on first use.

        Labels join by request id: a shadow's record may not carry the label its champion's got."""
        if self._labels is None:
            self._labels = {}
            if "label" in self._records.columns:
                column = self._records["label"].to_numpy(dtype=object)
                known = np.flatnonzero([type(text) is str and text != "" for text in column])
                ids = self._records["request_id"].to_numpy(dtype=object)[known]
                self._labels = dict(zip(map(str, ids), parse_lists(column[known]), strict=True))
        return self._labels


def split(frame: pd.DataFrame, model: ModelDeployment, start: float, end: float) -> Traffic:
    """The model's records in [start, end): the challenger's answers (role challenger in a canary,
    shadow in a shadow roll-out) and the champion's; records no version answered are neither's."""
    mine = frame[(frame["model"] == model.name) & (frame["time"] >= start) & (frame["time"] < end)]
    challenger = mine[(mine["version"] == model.challenger) & mine["role"].isin(("challenger", "shadow"))]
    champion = mine[(mine["version"] == model.champion) & (mine["role"] == "champion")]
    return Traffic(Side(challenger), Side(champion), mine)


def windows(traffic: Traffic, start: float, interval: float, now: float) -> list[Window]:
    """[start, now) cut into intervals of `interval` seconds; the last one is still running unless
    `now` falls on a boundary."""
    if now <= start:
        return []
    completed = int((now - start) // interval)
    edges = [start + k * interval for k in range(completed + 1)]
    if edges[-1] < now:
        edges.append(now)
    return [Window(k, low, high, k < completed, traffic.challenger.between(low, high),
                   traffic.champion.between(low, high))
            for k, (low, high) in enumerate(itertools.pairwise(edges))]


def parse_lists(texts: np.ndarray) -> list[list[Any]]:
    """JSON lists, one per text, parsed in one call ("" or unreadable text: an empty list)."""
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
    except (TypeError, json.JSONDecodeError):  # a record that is not one JSON text: take them one by one
        parsed = [_one_list(text) for text in texts]
    if set(map(type, parsed)) <= {list}:
        return list(parsed)
    return [rows if isinstance(rows, list) else [] for rows in parsed]


def _one_list(text: Any) -> Any:
    if not isinstance(text, str):
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return []


def as_numbers(values: list[Any]) -> np.ndarray:
    """Floats, NaN for what is not a number (null, text, true/false)."""
    if set(map(type, values)) <= {float, int}:  # the usual case, without a Python loop
        return np.asarray(values, dtype=float)
    numbers = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values]
    return np.asarray(numbers, dtype=float)
