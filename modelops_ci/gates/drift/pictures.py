"""Plot data for the report: a small picture of both sides of the features it draws.

The drifted ones (at most 12, most significant first), or when none drifted the 3 closest to it
(smallest p-values). Numeric: a 20-bin histogram (equal widths over both sides' 1st to 99th
percentiles, the tails counted in the end bins) and the two ECDFs at about 26 points; categorical:
the counts of the 14 commonest categories, the rest as "(other)", and missing values as "(missing)".
The prediction check carries the same for the scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import profile
from modelops_ci.gates.drift.univariate import aligned
from modelops_ci.gates.profile import CategoricalSummary, NumericSummary, Profile

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.result import Check

PICTURED = 12  # drifted features given plot data for the report
QUIET_PICTURED = 3  # features given plot data when none drifted: the closest to it
PICTURE_BINS = 20
PICTURE_LEVELS = np.linspace(0.01, 0.99, 13)  # ECDF points: these quantiles of each side
PICTURE_CATEGORIES = 15


def add_pictures(reference: Profile, current: pd.DataFrame, checks: list[Check]) -> None:
    """Plot data for the features the report draws: the drifted ones, else the closest to drifting."""
    tested = [c for c in checks if c.status != "error"]
    ranked = sorted(tested, key=lambda c: (c.details["p_adjusted"], c.p_value))
    drifted = [c for c in ranked if c.details["drifted"]]
    for check in drifted[:PICTURED] or ranked[:QUIET_PICTURED]:
        if check.name in reference.numeric:
            values = profile.as_float(current[check.name])
            check.details.update(numeric_picture(reference.numeric[check.name], np.sort(values[np.isfinite(values)])))
        else:
            check.details.update(category_picture(reference.categorical[check.name],
                                                  profile.categorical_summary(current[check.name])))


def numeric_picture(reference: NumericSummary, current: np.ndarray) -> dict[str, Any]:
    """`histogram` and `ecdf` of the reference and sorted finite `current` values, a few dozen numbers."""
    nr, nc = reference.n, len(current)
    if not nr or not nc:
        return {}
    cumulative = np.cumsum(reference.counts)

    def reference_quantile(levels: np.ndarray) -> np.ndarray:
        found: np.ndarray = reference.values[np.searchsorted(cumulative, levels * nr, side="left")]
        return found

    def rows_at_or_below(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.searchsorted(reference.values, x, side="right")
        return np.where(at > 0, cumulative[np.maximum(at - 1, 0)], 0), np.searchsorted(current, x, side="right")

    ends = PICTURE_LEVELS[[0, -1]]
    low = min(float(reference_quantile(ends)[0]), float(np.quantile(current, ends[0], method="inverted_cdf")))
    high = max(float(reference_quantile(ends)[1]), float(np.quantile(current, ends[1], method="inverted_cdf")))
    if not high > low:
        low, high = min(reference.values[0], current[0]), max(reference.values[-1], current[-1])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = _rounded(np.linspace(low, high, PICTURE_BINS + 1))
    ref_below, cur_below = rows_at_or_below(edges[1:-1])
    x = _rounded(np.unique(np.r_[reference_quantile(PICTURE_LEVELS),
                                 np.quantile(current, PICTURE_LEVELS, method="inverted_cdf")]))
    ref_ecdf, cur_ecdf = rows_at_or_below(x)
    return {"histogram": {"edges": edges.tolist(), "reference": np.diff(np.r_[0, ref_below, nr]).tolist(),
                          "current": np.diff(np.r_[0, cur_below, nc]).tolist()},
            "ecdf": {"x": x.tolist(), "reference": np.round(ref_ecdf / nr, 4).tolist(),
                     "current": np.round(cur_ecdf / nc, 4).tolist()}}


def _rounded(values: np.ndarray) -> np.ndarray:
    """Six significant digits, unless that would merge neighbouring values."""
    rounded = np.array([float(f"{v:.6g}") for v in values])
    return rounded if bool(np.all(np.diff(rounded) > 0)) else values


def category_picture(reference: CategoricalSummary, current: CategoricalSummary) -> dict[str, Any]:
    """`category_counts` of both sides: the commonest categories, the rest as "(other)", and missing."""
    categories = np.union1d(reference.categories, current.categories)
    ref_counts, cur_counts = aligned(reference, categories), aligned(current, categories)
    shares = np.maximum(ref_counts / max(reference.n, 1), cur_counts / max(current.n, 1))
    order = np.argsort(-shares, kind="stable")
    shown = order[: PICTURE_CATEGORIES - 1] if len(order) > PICTURE_CATEGORIES else order
    rest = np.setdiff1d(order, shown)
    labels = [str(categories[i]) for i in shown]
    ref, cur = [int(ref_counts[i]) for i in shown], [int(cur_counts[i]) for i in shown]
    for name, add_ref, add_cur in (("(other)", int(ref_counts[rest].sum()), int(cur_counts[rest].sum())),
                                   ("(missing)", reference.missing, current.missing)):
        if add_ref or add_cur:
            labels.append(name)
            ref.append(add_ref)
            cur.append(add_cur)
    return {"category_counts": {"labels": labels, "reference": ref, "current": cur}}
