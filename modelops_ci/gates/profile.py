"""A reference profile: all the drift gate needs of the reference data, computed once and stored.

Per numeric feature: the reference ECDF on at most `grid` points (every distinct value when there
are no more than that, else quantile points: each point carries the number of rows in
(previous point, point]), its mean and standard deviation, and how many values are NaN (missing)
or infinite. Per categorical feature: the count of each category and of missing values. Plus a
seeded sample of rows for the classifier two-sample test.

From a profile the ECDF of the reference is exact at its points, so the KS statistic is exact
while every distinct value is kept (`exact`), and otherwise within the largest share of rows
between two points (about 1/grid; see `resolution`) of the value on the raw data; its p-value
follows. PSI bins are edges among the points (exact shares). The Wasserstein distance counts the
rows between two points at the upper point: off by at most the bins' widths, a few thousandths of
an SD at 4,096 points except in long tails. Category counts are exact. The classifier test sees
the 5,000 sampled rows instead of up to 20,000, so it has less power.

Build one for a pipeline with `drift.inputs.reference_profile(ctx, grid=profile.GRID)` and `save` it;
point `drift.reference` at the file.

Stored as a versioned `.npz` of plain arrays plus a JSON header, read with `allow_pickle=False`
(a profile file cannot run code).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelops_ci.gates.result import CannotEvaluate

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "modelops-ci/drift-profile"
VERSION = 1
GRID = 4096  # points per numeric feature in a stored profile: KS within ~1/4096
SAMPLE_ROWS = 5000  # rows kept for the classifier test
T = TypeVar("T")


class NotNumericError(ValueError):
    """A column declared numeric holds values that are not numbers."""


@dataclass(frozen=True)
class NumericSummary:
    """The ECDF of one numeric feature's finite values, and what was left out of it."""

    values: np.ndarray  # sorted distinct values, or quantile points when there were more than the grid
    counts: np.ndarray  # rows with a value in (previous point, point]
    missing: int  # NaN (or None)
    infinite: int  # +inf or -inf
    mean: float
    std: float
    exact: bool  # every distinct value is a point

    @property
    def n(self) -> int:
        """Rows with a finite value."""
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return self.n + self.missing + self.infinite

    @property
    def resolution(self) -> float:
        """Bound on how far the KS statistic from these points can be from the raw data's."""
        return 0.0 if self.exact or self.n == 0 else float(self.counts.max() / self.n)


@dataclass(frozen=True)
class CategoricalSummary:
    """Rows per category (as text) of one categorical feature."""

    categories: np.ndarray  # str, sorted
    counts: np.ndarray
    missing: int

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return self.n + self.missing


@dataclass(frozen=True)
class Profile:
    """What the drift gate needs of the reference data."""

    rows: int
    numeric: dict[str, NumericSummary]
    categorical: dict[str, CategoricalSummary]
    sample: pd.DataFrame  # up to `SAMPLE_ROWS` rows of the features, for the classifier test

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


# -- summaries ------------------------------------------------------------------------------------


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 (missing as NaN); `NotNumericError` if it holds text."""
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        try:
            return np.asarray(pd.to_numeric(series, errors="raise"), dtype=float)
        except (TypeError, ValueError):
            raise NotNumericError(f"holds non-numeric values (dtype {series.dtype})") from None
    values: np.ndarray = series.to_numpy(dtype=float, na_value=np.nan)
    return values


def numeric_summary(values: np.ndarray, grid: int | None = None) -> NumericSummary:
    """Summarise float values (NaN missing, ±inf counted apart); at most `grid` points if given."""
    finite_mask = np.isfinite(values)
    missing = int(np.isnan(values).sum())
    finite = values[finite_mask]
    points, counts = np.unique(finite, return_counts=True)
    mean = float(finite.mean()) if finite.size else float("nan")
    std = float(finite.std()) if finite.size else float("nan")
    summary = NumericSummary(points, counts.astype(np.int64), missing, int(values.size - finite.size - missing),
                             mean, std, exact=True)
    return coarsen(summary, grid) if grid is not None else summary


def coarsen(summary: NumericSummary, grid: int) -> NumericSummary:
    """The same ECDF kept at about `grid` quantile points (exact at each kept point)."""
    if len(summary.values) <= grid:
        return summary
    cumulative = np.cumsum(summary.counts)
    targets = np.linspace(0, cumulative[-1], grid)[1:]
    keep = np.unique(np.r_[0, np.searchsorted(cumulative, targets, side="left"), len(cumulative) - 1])
    counts = np.diff(cumulative[keep], prepend=0)
    return NumericSummary(summary.values[keep], counts, summary.missing, summary.infinite,
                          summary.mean, summary.std, exact=False)


def category_labels(series: pd.Series) -> pd.Series:
    """Categories as text, so that 1, 1.0 and "1" from differently typed files are one category."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype(float)
        whole = numbers.dropna()
        if bool(((whole == np.round(whole)) & (whole.abs() < 2**53)).all()):
            return numbers.astype("Int64").astype("string")
        return numbers.astype("string")
    return series.astype("string")


def categorical_summary(series: pd.Series) -> CategoricalSummary:
    counts = category_labels(series).value_counts(dropna=True)
    counts = counts[counts > 0]
    categories = np.asarray([str(c) for c in counts.index], dtype=str)
    order = np.argsort(categories)  # the comparison aligns categories by binary search
    return CategoricalSummary(categories[order], counts.to_numpy(dtype=np.int64)[order],
                              int(len(series) - int(counts.sum())))


def build(frame: pd.DataFrame, numeric: list[str], categorical: list[str], *, grid: int | None = GRID,
          sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> Profile:
    """The profile of `frame`'s features; `grid=None` keeps every distinct value.

    Raises `NotNumericError` (naming the column) if a numeric feature holds text.
    """

    def summarise(name: str) -> NumericSummary:
        try:
            return numeric_summary(as_float(frame[name]), grid)
        except NotNumericError as exc:
            raise NotNumericError(f"{name} {exc}") from None

    summaries = dict(zip(numeric, parallel(summarise, numeric, len(frame)), strict=True))
    counted = dict(zip(categorical, parallel(lambda name: categorical_summary(frame[name]), categorical, len(frame)),
                       strict=True))
    return Profile(len(frame), summaries, counted, sample_of(frame, sample_rows, seed, [*numeric, *categorical]))


# Below this many rows a column's work is mostly Python holding the GIL, and threads only fight
# over it: 20 features (profile and compare) took 25 ms serially and 48 ms on 2 threads at 2,000
# rows, 55 and 45 ms at 20,000, 213 and 130 ms at 100,000; 4,000 features of 200 rows, 3.3 s and 6.6 s.
PARALLEL_ROWS = 20_000


def parallel(function: Callable[[str], T], names: list[str], rows: int) -> list[T]:
    """`function` over `names`, each a column of `rows` rows: on all cores when the columns are long
    enough for numpy's sorts and pyarrow's counts (which release the GIL) to pay for the threads."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = min(len(names), os.cpu_count() or 1) if rows >= PARALLEL_ROWS else 1
    if workers <= 1:
        return [function(name) for name in names]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, names))


def sample_of(frame: pd.DataFrame, rows: int, seed: int, columns: list[str] | None = None) -> pd.DataFrame:
    """Up to `rows` rows drawn without replacement (seeded), in their original order.

    Rows are picked before columns, so a large frame is never copied whole.
    """
    if len(frame) > rows:
        picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
        frame = frame.iloc[picked]
    chosen = frame if columns is None else frame[columns]
    return chosen.reset_index(drop=True)


# -- files ----------------------------------------------------------------------------------------


def save(profile: Profile, path: Path) -> None:
    """Write `profile` to `path` (.npz); a crash leaves the old file or the new one."""
    from modelops_ci.fsutil import replacing

    arrays, header = _arrays(profile)
    arrays["header"] = np.asarray(json.dumps(header, sort_keys=True))
    savez: Callable[..., None] = np.savez_compressed  # typed as if every array were a keyword option
    with replacing(path) as temp, temp.open("wb") as handle:
        savez(handle, **arrays)


def _arrays(profile: Profile) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import pandas as pd

    arrays: dict[str, np.ndarray] = {}
    numeric_meta = []
    for i, (name, s) in enumerate(profile.numeric.items()):
        arrays[f"numeric_{i}_values"], arrays[f"numeric_{i}_counts"] = s.values, s.counts
        numeric_meta.append({"name": name, "missing": s.missing, "infinite": s.infinite, "mean": s.mean,
                             "std": s.std, "exact": s.exact})
    categorical_meta = []
    for i, (name, c) in enumerate(profile.categorical.items()):
        arrays[f"categorical_{i}_categories"], arrays[f"categorical_{i}_counts"] = c.categories, c.counts
        categorical_meta.append({"name": name, "missing": c.missing})
    sample_meta = []
    for i, name in enumerate(profile.sample.columns):
        column = profile.sample[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            arrays[f"sample_{i}"] = column.to_numpy(dtype=float, na_value=np.nan)
            sample_meta.append({"name": str(name), "kind": "number"})
        else:
            text = column.astype("string")
            arrays[f"sample_{i}"] = np.asarray(text.fillna("").to_numpy(dtype=object), dtype=str)
            arrays[f"sample_{i}_missing"] = text.isna().to_numpy(dtype=bool)
            sample_meta.append({"name": str(name), "kind": "text"})
    header = {"format": FORMAT, "version": VERSION, "rows": profile.rows, "numeric": numeric_meta,
              "categorical": categorical_meta, "sample": sample_meta}
    return arrays, header


def load(path: Path) -> Profile:
    """The profile stored at `path`; `CannotEvaluate` says what is wrong with the file."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        header = json.loads(str(arrays.pop("header")))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise CannotEvaluate(f"{path}: not a readable drift profile ({exc}): rebuild it") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CannotEvaluate(f"{path}: not a modelops-ci drift profile: rebuild it")
    if header.get("version") != VERSION:
        raise CannotEvaluate(f"{path}: profile format version {header.get('version')}, this modelops-ci reads "
                             f"version {VERSION}: rebuild the profile")
    try:
        return _profile(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise CannotEvaluate(f"{path}: incomplete drift profile (missing {exc}): rebuild it") from None


def _profile(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Profile:
    import pandas as pd

    numeric = {m["name"]: NumericSummary(arrays[f"numeric_{i}_values"].astype(float),
                                         arrays[f"numeric_{i}_counts"].astype(np.int64), int(m["missing"]),
                                         int(m["infinite"]), float(m["mean"]), float(m["std"]), bool(m["exact"]))
               for i, m in enumerate(header["numeric"])}
    categorical = {m["name"]: CategoricalSummary(arrays[f"categorical_{i}_categories"].astype(str),
                                                 arrays[f"categorical_{i}_counts"].astype(np.int64),
                                                 int(m["missing"]))
                   for i, m in enumerate(header["categorical"])}
    columns: dict[str, Any] = {}
    for i, m in enumerate(header["sample"]):
        if m["kind"] == "number":
            columns[m["name"]] = arrays[f"sample_{i}"]
        else:
            text = pd.Series(arrays[f"sample_{i}"], dtype="string")
            columns[m["name"]] = text.mask(arrays[f"sample_{i}_missing"])
    return Profile(int(header["rows"]), numeric, categorical, pd.DataFrame(columns))
