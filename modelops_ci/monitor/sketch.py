"""Window profiles: each window of logged rows summarised once, small, and mergeable without rows.

Per numeric feature (and the model's scores): a KLL sketch of the finite values (Apache
DataSketches, `kll_doubles_sketch`), the counts of missing and infinite values, and the exact count,
mean and sum of squared deviations (merged by Chan's formula). Per categorical feature (and the
predicted labels): a frequent-items sketch of the categories (`frequent_strings_sketch`) and the
missing count. Hour profiles merge into a day's, days into a week's: counts, means and variances
exactly; the KLL sketch keeps its rank error (RANK_ERROR at k = KLL_K: any rank it reports is within
that share of the rows of the true rank, with 99% confidence), and category counts stay exact while
a feature has at most EXACT_CATEGORIES distinct values (beyond, each count is within the sketch's
stated error).

Stored as `.npz` of plain arrays (a JSON header and each sketch's own serialised bytes), read with
`allow_pickle=False`: a profile file cannot run code, and one that does not parse is refused with
the file's name.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.errors import UserError
from modelops_ci.fsutil import write_bytes_atomic

if TYPE_CHECKING:
    import pandas as pd
    from datasketches import frequent_strings_sketch, kll_doubles_sketch

    from modelops_ci.gates.profile import CategoricalSummary, NumericSummary

FORMAT = "modelops-ci/window-profile"
VERSION = 1
KLL_K = 400
RANK_ERROR = 0.0068  # kll_doubles_sketch.get_normalized_rank_error(400, False), rounded up
FREQUENT_LG_SIZE = 10  # a map of 2**10 slots: counts are exact up to 0.75 of it
EXACT_CATEGORIES = 768


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of finite values; merged exactly (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        if not values.size:
            return cls()
        mean = float(values.mean())
        return cls(int(values.size), mean, float(((values - mean) ** 2).sum()))

    def merged(self, other: Moments) -> Moments:
        n = self.n + other.n
        if n == 0:
            return Moments()
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * other.n / n, self.m2 + other.m2 + delta**2 * self.n * other.n / n)

    @property
    def std(self) -> float:
        """The population standard deviation (NaN without values), as the gate's profiles keep it."""
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")


@dataclass
class NumericSketch:
    kll: kll_doubles_sketch
    moments: Moments
    missing: int = 0
    infinite: int = 0

    @classmethod
    def of(cls, values: np.ndarray) -> NumericSketch:
        from datasketches import kll_doubles_sketch

        finite = values[np.isfinite(values)]
        sketch = kll_doubles_sketch(KLL_K)
        if finite.size:
            sketch.update(finite)
        missing = int(np.isnan(values).sum())
        return cls(sketch, Moments.of(finite), missing, int(values.size - finite.size - missing))

    def merged(self, other: NumericSketch) -> NumericSketch:
        from datasketches import kll_doubles_sketch

        sketch = kll_doubles_sketch(KLL_K)
        sketch.merge(self.kll)
        sketch.merge(other.kll)
        return NumericSketch(sketch, self.moments.merged(other.moments), self.missing + other.missing,
                             self.infinite + other.infinite)

    @property
    def rows(self) -> int:
        return self.moments.n + self.missing + self.infinite

    def summary(self) -> NumericSummary:
        """The sketch as the drift gate's ECDF summary: its retained values with their weights."""
        from modelops_ci.gates.profile import NumericSummary

        pairs = sorted(self.kll) if not self.kll.is_empty() else []
        values = np.array([value for value, _ in pairs], dtype=float)
        weights = np.array([weight for _, weight in pairs], dtype=np.int64)
        points, first = np.unique(values, return_index=True)
        counts = np.add.reduceat(weights, first) if len(weights) else weights
        return NumericSummary(points, counts, self.missing, self.infinite, self.moments.mean, self.moments.std,
                              exact=not self.kll.is_estimation_mode())


@dataclass
class CategoricalSketch:
    items: frequent_strings_sketch
    missing: int = 0

    @classmethod
    def of(cls, series: pd.Series) -> CategoricalSketch:
        from datasketches import frequent_strings_sketch

        from modelops_ci.gates.profile import category_labels

        counts = category_labels(series).value_counts(dropna=True)
        sketch = frequent_strings_sketch(FREQUENT_LG_SIZE)
        for category, count in counts.items():
            if count:
                sketch.update(str(category), int(count))
        return cls(sketch, int(len(series) - int(counts.sum())))

    def merged(self, other: CategoricalSketch) -> CategoricalSketch:
        from datasketches import frequent_strings_sketch

        sketch = frequent_strings_sketch(FREQUENT_LG_SIZE)
        sketch.merge(self.items)
        sketch.merge(other.items)
        return CategoricalSketch(sketch, self.missing + other.missing)

    @property
    def exact(self) -> bool:
        """Every category's count is exact: the sketch never had to drop one."""
        found = self._items()
        return (all(lower == upper for _, _, lower, upper in found)
                and sum(count for _, count, _, _ in found) == self.items.total_weight)

    @property
    def rows(self) -> int:
        return int(self.items.total_weight) + self.missing

    def summary(self) -> CategoricalSummary:
        from modelops_ci.gates.profile import CategoricalSummary

        found = sorted((str(item), int(count)) for item, count, _, _ in self._items())
        categories = np.asarray([item for item, _ in found], dtype=str)
        counts = np.asarray([count for _, count in found], dtype=np.int64)
        return CategoricalSummary(categories, counts, self.missing)

    def _items(self) -> list[tuple[str, int, int, int]]:
        from datasketches import frequent_items_error_type

        if self.items.is_empty():
            return []
        found: list[tuple[str, int, int, int]] = self.items.get_frequent_items(
            frequent_items_error_type.NO_FALSE_NEGATIVES)
        return found


@dataclass
class WindowProfile:
    """One window of one model version's logged rows (or several windows merged)."""

    model: str
    version: str
    start: float  # unix seconds, inclusive
    end: float  # unix seconds, exclusive
    rows: int
    numeric: dict[str, NumericSketch] = field(default_factory=dict)
    categorical: dict[str, CategoricalSketch] = field(default_factory=dict)
    scores: NumericSketch | None = None  # the positive class's probability, for a classifier
    windows: int = 1  # how many windows were merged into it

    @classmethod
    def build(cls, frame: pd.DataFrame, model: str, version: str, start: float, end: float,
              numeric: list[str], categorical: list[str], score: str | None = None) -> WindowProfile:
        """The profile of `frame`'s rows (features already typed: see monitor/logged.py)."""
        scores = None if score is None or score not in frame else NumericSketch.of(_numbers(frame, score))
        return cls(model, version, start, end, len(frame),
                   {name: NumericSketch.of(_numbers(frame, name)) for name in numeric},
                   {name: CategoricalSketch.of(frame[name]) for name in categorical}, scores)

    def merged(self, other: WindowProfile) -> WindowProfile:
        """Both windows as one (the same model, version and features)."""
        if (self.model, self.version) != (other.model, other.version):
            raise ValueError(f"cannot merge {other.model} {other.version} into {self.model} {self.version}")
        if list(self.numeric) != list(other.numeric) or list(self.categorical) != list(other.categorical):
            raise ValueError(f"cannot merge windows of {self.model} {self.version} with other features")
        scores = (self.scores if other.scores is None else other.scores if self.scores is None
                  else self.scores.merged(other.scores))
        return WindowProfile(
            self.model, self.version, min(self.start, other.start), max(self.end, other.end),
            self.rows + other.rows,
            {name: sketch.merged(other.numeric[name]) for name, sketch in self.numeric.items()},
            {name: sketch.merged(other.categorical[name]) for name, sketch in self.categorical.items()},
            scores, self.windows + other.windows)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column `name` as floats; NotNumericError naming it when it holds text."""
    from modelops_ci.gates.profile import NotNumericError, as_float

    try:
        return as_float(frame[name])
    except NotNumericError as exc:
        raise NotNumericError(f"{name} {exc}") from None


def merge_all(profiles: list[WindowProfile]) -> WindowProfile:
    """The profiles merged into one, in one pass over each feature's sketches."""
    if not profiles:
        raise ValueError("no window profiles to merge")
    merged = profiles[0]
    for profile in profiles[1:]:
        merged = merged.merged(profile)
    return merged


# -- files ------------------------------------------------------------------------------------------------


def to_bytes(profile: WindowProfile) -> bytes:
    import io

    arrays: dict[str, np.ndarray] = {}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kll_k": KLL_K, "model": profile.model,
                              "model_version": profile.version, "start": profile.start, "end": profile.end,
                              "rows": profile.rows, "windows": profile.windows, "numeric": [], "categorical": []}

    def numeric(name: str, sketch: NumericSketch) -> dict[str, Any]:
        arrays[f"s{len(arrays)}"] = np.frombuffer(sketch.kll.serialize(), dtype=np.uint8)
        return {"name": name, "missing": sketch.missing, "infinite": sketch.infinite, "n": sketch.moments.n,
                "mean": sketch.moments.mean, "m2": sketch.moments.m2}

    for name, sketch in profile.numeric.items():
        header["numeric"].append(numeric(name, sketch))
    for name, counted in profile.categorical.items():
        arrays[f"s{len(arrays)}"] = np.frombuffer(counted.items.serialize(), dtype=np.uint8)
        header["categorical"].append({"name": name, "missing": counted.missing})
    if profile.scores is not None:
        header["scores"] = numeric("scores", profile.scores)
    buffer = io.BytesIO()
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub takes the first keyword for allow_pickle
    return buffer.getvalue()


def from_bytes(data: bytes, source: str) -> WindowProfile:
    """A profile from `to_bytes`'s bytes; UserError naming `source` when they are not one."""
    import io

    from datasketches import frequent_strings_sketch, kll_doubles_sketch

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            header = json.loads(stored["header"].tobytes())
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError(f"not a window profile of format {FORMAT} {VERSION}")
            blobs = iter(stored[f"s{index}"].tobytes() for index in range(len(stored.files) - 1))

            def numeric(entry: dict[str, Any]) -> NumericSketch:
                moments = Moments(int(entry["n"]), float(entry["mean"]), float(entry["m2"]))
                return NumericSketch(kll_doubles_sketch.deserialize(next(blobs)), moments, int(entry["missing"]),
                                     int(entry["infinite"]))

            numerics = {entry["name"]: numeric(entry) for entry in header["numeric"]}
            categoricals = {entry["name"]: CategoricalSketch(frequent_strings_sketch.deserialize(next(blobs)),
                                                             int(entry["missing"])) for entry in header["categorical"]}
            scores = numeric(header["scores"]) if "scores" in header else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, StopIteration, zipfile.BadZipFile) as exc:
        raise UserError(f"{source}: not a readable window profile ({exc}): write it again with "
                        "`modelops-ci monitor`") from exc
    return WindowProfile(str(header["model"]), str(header["model_version"]), float(header["start"]),
                         float(header["end"]), int(header["rows"]), numerics, categoricals, scores,
                         int(header["windows"]))


def save(profile: WindowProfile, path: Path) -> None:
    write_bytes_atomic(path, to_bytes(profile))


def load(path: Path) -> WindowProfile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the window profile ({exc.strerror})") from exc
    return from_bytes(data, str(path))
