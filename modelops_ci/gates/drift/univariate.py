"""Per-feature drift: one test of "same distribution" per feature, effect sizes beside it, and the
correction over all features that decides which drifted.

Numeric features: two-sample Kolmogorov-Smirnov, Wasserstein-1 in reference SDs, PSI on reference
deciles. Categorical: chi-squared on the 2 x k table, Jensen-Shannon distance, PSI. Both: Fisher's
exact test of the missing rate, combined with the distribution test by Bonferroni.

With raw reference data the reference ECDF keeps up to 65,536 distinct values (KS and Wasserstein are
then exact); with more, 65,536 quantile points (the KS statistic within 1/65,536). A stored profile
keeps 4,096 (within 1/4,096; see `profile.py`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import profile
from modelops_ci.gates.profile import CategoricalSummary, NotNumericError, NumericSummary, Profile
from modelops_ci.gates.result import Check, Status

if TYPE_CHECKING:
    import pandas as pd

RAW_GRID = 65_536  # points of a reference ECDF built from raw data
SCIPY_EXACT_ROWS = 10_000  # ks_2samp's exact p-values up to this many rows a side
PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite
NAMES_SHOWN = 5


def compare(reference: Profile, current: pd.DataFrame) -> list[Check]:
    """Each feature's tests (undecided: `decide` applies the correction), in the reference's order."""

    def numeric(name: str) -> Check:
        try:
            values = profile.as_float(current[name])
        except NotNumericError as exc:
            return Check(name, "error", f"{name} is numeric in the reference but {exc} in the current data",
                         details={"kind": "numeric"})
        return numeric_drift(name, reference.numeric[name], values)

    def categorical(name: str) -> Check:
        return categorical_drift(name, reference.categorical[name], profile.categorical_summary(current[name]))

    rows = len(current)
    return [*profile.parallel(numeric, list(reference.numeric), rows),
            *profile.parallel(categorical, list(reference.categorical), rows)]


# -- numeric features -----------------------------------------------------------------------------


def ecdf_distances(reference: NumericSummary, current: np.ndarray) -> tuple[float, float]:
    """(KS statistic, Wasserstein-1 distance) between the reference ECDF and sorted finite `current`.

    The reference ECDF is a step function with `counts` rows at `values`; both distances are exact
    for it (the current values are used as they are), so they are exact on raw data whenever the
    reference kept every distinct value.
    """
    nr, nc = reference.n, len(current)
    shift = reference.values[len(reference.values) // 2]  # centred sums lose no precision
    points, values = reference.values - shift, current - shift
    cumulative = np.cumsum(reference.counts)
    level = cumulative / nr  # the reference ECDF on [point k, point k+1)
    at = np.searchsorted(values, points, side="right")
    below = np.searchsorted(values, points, side="left")
    ks = max(float(np.abs(level - at / nc).max()),
             float(np.abs(np.r_[0.0, level[:-1]] - below / nc).max()))
    return ks, _wasserstein(points, cumulative, level, values, at)


def _wasserstein(points: np.ndarray, cumulative: np.ndarray, level: np.ndarray, values: np.ndarray,
                 at: np.ndarray) -> float:
    """∫|F_ref - F_cur| dx, interval by interval of the reference step function.

    On [a, b) the reference ECDF is a constant t and the current ECDF rises past t at one value x*
    (it exceeds t from the m-th sorted value on, m = floor(t * n)), so the integral is
    t(x* - a) - ∫_a^x* F + ∫_x*^b F - t(b - x*), with ∫F from prefix sums of the sorted values.
    """
    nr, nc = int(cumulative[-1]), len(values)
    prefix = np.r_[0.0, np.cumsum(values)]

    def area(x: np.ndarray, count: np.ndarray) -> np.ndarray:  # ∫_{-inf}^x F_cur
        result: np.ndarray = (count * x - prefix[count]) / nc
        return result

    first = float(area(points[:1], at[:1])[0])  # below the reference: its ECDF is 0
    tail = int(at[-1])  # above it: 1
    last = ((prefix[-1] - prefix[tail]) - (nc - tail) * points[-1]) / nc
    a, b, t = points[:-1], points[1:], level[:-1]
    crossing = (cumulative[:-1] * nc) // nr
    x = np.clip(np.where(crossing < nc, values[np.minimum(crossing, nc - 1)], b), a, b)
    area_a, area_b = area(a, at[:-1]), area(b, at[1:])
    area_x = area(x, np.searchsorted(values, x, side="right"))
    middle = t * (x - a) - (area_x - area_a) + (area_b - area_x) - t * (b - x)
    return float(first + last + middle.sum())


def ks_test(reference: NumericSummary, current: np.ndarray) -> tuple[float, float, float]:
    """(KS statistic, p-value, Wasserstein-1) of sorted finite `current` against the reference.

    Up to 10,000 rows a side the p-value is scipy's exact one (`ks_2samp`). Above, it is Kolmogorov's
    limiting distribution at D * (sqrt(n) + 0.12 + 0.11 / sqrt(n)), n = n1 n2 / (n1 + n2) (Stephens'
    correction): within 2% of scipy's asymptotic `kstwo` for p >= 1e-8, which at a million rows can
    take a second per feature.
    """
    from scipy import stats

    nr, nc = reference.n, len(current)
    statistic, distance = ecdf_distances(reference, current)
    if reference.exact and max(nr, nc) <= SCIPY_EXACT_ROWS:
        with warnings.catch_warnings():  # scipy falls back to the asymptotic p-value itself
            warnings.simplefilter("ignore", RuntimeWarning)
            exact = stats.ks_2samp(np.repeat(reference.values, reference.counts), current)
        return float(exact.statistic), float(exact.pvalue), distance
    root = np.sqrt(nr * nc / (nr + nc))
    p_value = float(np.clip(stats.kstwobign.sf(statistic * (root + 0.12 + 0.11 / root)), 0, 1))
    return statistic, p_value, distance


def numeric_psi(reference: NumericSummary, current: np.ndarray) -> float:
    """PSI over the reference deciles (bins closed on the right, open-ended at both ends)."""
    edges, reference_share = _deciles(reference)
    nc = len(current)
    current_share = np.diff(np.r_[0, np.searchsorted(current, edges, side="right"), nc]) / nc
    return psi(reference_share, current_share)


def _deciles(reference: NumericSummary) -> tuple[np.ndarray, np.ndarray]:
    """The reference's decile edges among its points, and its share of rows in each bin."""
    cumulative = np.cumsum(reference.counts)
    nr = int(cumulative[-1])
    quantiles = np.arange(1, PSI_BINS) * nr  # compare cumulative/nr with k/10 in integers
    edges = np.unique(np.searchsorted(cumulative * PSI_BINS, quantiles, side="left"))
    return reference.values[edges], np.diff(np.r_[0, cumulative[edges], nr]) / nr


def psi(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    r, c = np.maximum(reference_share, PSI_FLOOR), np.maximum(current_share, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def normalised_wasserstein(distance: float, reference: NumericSummary, current: np.ndarray) -> float:
    """Wasserstein-1 in reference standard deviations (pooled ones when the reference is constant)."""
    scale = reference.std
    if not scale > 0:
        n = reference.n + len(current)
        mean = (reference.mean * reference.n + float(current.sum())) / n
        scale = float(np.sqrt((reference.n * (reference.std**2 + (reference.mean - mean) ** 2)
                               + float(((current - mean) ** 2).sum())) / n))
    return distance / scale if scale > 0 else 0.0


def numeric_drift(name: str, reference: NumericSummary, values: np.ndarray) -> Check:
    """One numeric feature's tests (undecided: `decide` applies the correction)."""
    finite = values[np.isfinite(values)]
    missing = int(np.isnan(values).sum())
    infinite = len(values) - len(finite) - missing
    details: dict[str, Any] = {"kind": "numeric", "test": "ks", "n_reference": reference.n,
                               **_missing_details(reference.missing, reference.rows, missing, len(values))}
    if infinite or reference.infinite:
        where = [f"{count} in the {side} data" for count, side in ((infinite, "current"),
                                                                    (reference.infinite, "reference")) if count]
        return Check(name, "error", f"{name} has infinite values ({', '.join(where)}): drift tests need finite "
                     "numbers; replace ±inf by a finite value, or by NaN to count it as missing",
                     n=len(finite), details=details)
    finite.sort()
    statistic = p_distribution = None
    if reference.n and len(finite):
        statistic, p_distribution, distance = ks_test(reference, finite)
        details.update(wasserstein_sd=normalised_wasserstein(distance, reference, finite),
                       psi=numeric_psi(reference, finite), ks_resolution=reference.resolution)
    return _tested(name, details, statistic, p_distribution, len(finite))


def numeric_drift_summarised(name: str, reference: NumericSummary, current: NumericSummary,
                             rank_error: float) -> Check:
    """`numeric_drift` when the current data is itself a summary (a sketch of a window's rows).

    An exact summary (every value kept) is the raw data: the gate's own tests run on it. Otherwise
    the KS statistic and the Wasserstein distance are computed between the two ECDF step functions
    (exact for them), and the KS test is run on the statistic less `rank_error`, the sketch's rank
    error: a sketch then cannot make a false alarm more likely, only a small shift harder to see.
    """
    if current.exact:
        finite = np.repeat(current.values, current.counts)
        values = np.r_[finite, np.full(current.missing, np.nan), np.full(current.infinite, np.inf)]
        return numeric_drift(name, reference, values)
    details: dict[str, Any] = {"kind": "numeric", "test": "ks", "n_reference": reference.n,
                               "sketch_rank_error": rank_error,
                               **_missing_details(reference.missing, reference.rows, current.missing, current.rows)}
    if current.infinite or reference.infinite:
        return Check(name, "error", f"{name} has infinite values: drift tests need finite numbers; replace ±inf "
                     "by a finite value, or by NaN to count it as missing", n=current.n, details=details)
    statistic = p_distribution = None
    if reference.n and current.n:
        from scipy import stats

        statistic, distance = summary_distances(reference, current)
        root = np.sqrt(reference.n * current.n / (reference.n + current.n))
        tested = max(0.0, statistic - rank_error)
        p_distribution = float(np.clip(stats.kstwobign.sf(tested * (root + 0.12 + 0.11 / root)), 0, 1))
        edges, reference_share = _deciles(reference)
        current_share = np.diff(np.r_[0.0, _ecdf_at(current, edges), 1.0])
        scale = reference.std if reference.std > 0 else current.std
        details.update(wasserstein_sd=distance / scale if scale > 0 else 0.0, psi=psi(reference_share, current_share),
                       ks_resolution=reference.resolution + rank_error)
    return _tested(name, details, statistic, p_distribution, current.n)


def summary_distances(reference: NumericSummary, current: NumericSummary) -> tuple[float, float]:
    """(KS statistic, Wasserstein-1 distance) between two ECDF step functions, exact for them: both
    are constant between the union of their points, where the supremum and the integral are read."""
    points = np.union1d(reference.values, current.values)
    gap = np.abs(_ecdf_at(reference, points) - _ecdf_at(current, points))
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(points)))


def _ecdf_at(summary: NumericSummary, points: np.ndarray) -> np.ndarray:
    """The summary's ECDF (share of its finite values at most x) at each of `points`."""
    cumulative = np.r_[0, np.cumsum(summary.counts)]
    at: np.ndarray = cumulative[np.searchsorted(summary.values, points, side="right")] / summary.n
    return at


# -- categorical features -------------------------------------------------------------------------


def categorical_drift(name: str, reference: CategoricalSummary, current: CategoricalSummary) -> Check:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    categories = np.union1d(reference.categories, current.categories)
    ref_counts, cur_counts = aligned(reference, categories), aligned(current, categories)
    unseen = {str(c): int(k) for c, k, r in zip(categories, cur_counts, ref_counts, strict=True) if k and not r}
    details: dict[str, Any] = {"kind": "categorical", "test": "chi2", "n_reference": reference.n,
                               "categories": len(categories), "unseen": unseen,
                               "unseen_share": sum(unseen.values()) / current.n if current.n else 0.0,
                               **_missing_details(reference.missing, reference.rows, current.missing, current.rows)}
    statistic = p_distribution = None
    if reference.n and current.n:
        table = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        statistic, p_distribution = float(table.statistic), float(table.pvalue)
        ref_share, cur_share = ref_counts / reference.n, cur_counts / current.n
        details.update(dof=int(table.dof), js=float(jensenshannon(ref_share, cur_share, base=2)),
                       psi=psi(ref_share, cur_share))
    return _tested(name, details, statistic, p_distribution, current.n)


def aligned(summary: CategoricalSummary, categories: np.ndarray) -> np.ndarray:
    """The summary's counts in the order of `categories` (sorted, a superset of its own), 0 where absent."""
    counts = np.zeros(len(categories), dtype=np.int64)
    counts[np.searchsorted(categories, summary.categories)] = summary.counts
    return counts


# -- both -----------------------------------------------------------------------------------------


def missing_rate_test(ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int) -> float | None:
    """Fisher's exact p-value for a change in the missing share; None when nothing is missing."""
    from scipy import stats

    if ref_missing + cur_missing == 0:
        return None
    table = [[ref_missing, ref_rows - ref_missing], [cur_missing, cur_rows - cur_missing]]
    return float(stats.fisher_exact(table).pvalue)


def _missing_details(ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int) -> dict[str, Any]:
    return {"missing_reference": ref_missing / ref_rows if ref_rows else 0.0,
            "missing_current": cur_missing / cur_rows if cur_rows else 0.0,
            "missing_p": missing_rate_test(ref_missing, ref_rows, cur_missing, cur_rows)}


def _tested(name: str, details: dict[str, Any], statistic: float | None, p_distribution: float | None,
            n: int) -> Check:
    """A feature's check with its combined p-value: Bonferroni over the tests that applied."""
    p_values = [p for p in (p_distribution, details["missing_p"]) if p is not None]
    details["p_distribution"] = p_distribution
    p_value = min(1.0, len(p_values) * min(p_values)) if p_values else 1.0
    return Check(name, "pass", "", statistic=statistic, p_value=p_value, n=n, details=details)


def adjust(p_values: np.ndarray, correction: str) -> np.ndarray:
    """p-values corrected for testing every feature: `fdr_bh`, `bonferroni` or `none`."""
    from scipy import stats

    if len(p_values) == 0 or correction == "none":
        return p_values
    if correction == "bonferroni":
        bonferroni: np.ndarray = np.minimum(1.0, p_values * len(p_values))
        return bonferroni
    adjusted: np.ndarray = np.asarray(stats.false_discovery_control(p_values, method="bh"), dtype=float)
    return adjusted


def decide(checks: list[Check], alpha: float, correction: str, max_share: float) -> Check:
    """Mark drifted features (corrected p-value at most alpha) and apply the share rule."""
    tested = [c for c in checks if c.status != "error"]
    adjusted = adjust(np.array([c.p_value for c in tested], dtype=float), correction)
    for check, q in zip(tested, adjusted, strict=True):
        check.details["p_adjusted"] = float(q)
        check.details["drifted"] = bool(q <= alpha)
        check.status = "warn" if q <= alpha else "pass"
        check.threshold = {"alpha": alpha}
        check.reason = _feature_reason(check)
    drifted = sorted((c for c in tested if c.details["drifted"]), key=lambda c: c.details["p_adjusted"])
    share = len(drifted) / len(tested) if tested else 0.0
    status: Status = "fail" if share > max_share else "pass"
    names = ", ".join(c.name for c in drifted[:NAMES_SHOWN]) + (", ..." if len(drifted) > NAMES_SHOWN else "")
    found = (f"{len(drifted)} of {len(tested)} features changed significantly ({names})" if drifted
             else f"none of {len(tested)} features changed significantly")
    reason = f"{found}; the policy allows at most {max_share:.0%}"
    return Check("dataset", status, reason, statistic=share, threshold={"max_drifted_share": max_share},
                 n=len(tested), details={"drifted": [c.name for c in drifted], "correction": correction,
                                         "alpha": alpha})


def _feature_reason(check: Check) -> str:
    d = check.details
    parts = []
    if d["p_distribution"] is not None:
        if d["test"] == "ks":
            parts.append(f"KS D={check.statistic:.3g} (p={d['p_distribution']:.2g}), "
                         f"Wasserstein {d['wasserstein_sd']:.3g} SD, PSI {d['psi']:.3g}")
        else:
            parts.append(f"chi² {check.statistic:.4g} (dof {d['dof']}, p={d['p_distribution']:.2g}), "
                         f"Jensen-Shannon {d['js']:.3g}, PSI {d['psi']:.3g}")
    if d["missing_p"] is not None:
        parts.append(f"missing {d['missing_reference']:.1%} → {d['missing_current']:.1%} (p={d['missing_p']:.2g})")
    if d.get("unseen"):
        shown = ", ".join(repr(c) for c in list(d["unseen"])[:NAMES_SHOWN])
        parts.append(f"unseen categories {shown} ({d['unseen_share']:.1%} of current rows)")
    verdict = "changed significantly" if d["drifted"] else "no significant change"
    alpha = (check.threshold or {})["alpha"]
    tested = f"corrected p={d['p_adjusted']:.2g}, alpha {alpha:g}"
    return f"{check.name}: {verdict} ({tested}): " + "; ".join(parts or ["no values"])
