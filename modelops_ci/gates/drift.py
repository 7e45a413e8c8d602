"""Drift: does the current data come from the same distribution as the reference?

In CI the reference is the training split and the current data the test split; for monitoring the
current data is a new batch (`drift.current`) and the reference may be a stored profile
(`drift.reference: path/to/profile.npz`, see `profile.py`).

Per feature, one test of "same distribution" and effect sizes beside it:
- numeric: two-sample Kolmogorov-Smirnov (scipy's exact `ks_2samp` p-value up to 10,000 rows a
  side, the Kolmogorov limit with Stephens' correction above); Wasserstein-1 distance in reference
  standard deviations; PSI on reference deciles;
- categorical: chi-squared test of the 2 x k table (scipy's `chi2_contingency`), Jensen-Shannon
  distance (base 2) and PSI; categories the reference never had stay in the table (they are drift)
  and are named;
- both: a missing-rate change (Fisher's exact test on missing/present counts); NaN is missing.
  When both tests apply, the feature's p-value is the Bonferroni combination (2 x the smaller).

The features' p-values are corrected together (Benjamini-Hochberg by default); a feature drifted
when its corrected p-value is at most `alpha`. The gate fails when the share of drifted features
exceeds `max_drifted_share`, or when a classifier tells current rows from reference rows (held-out
ROC AUC, Mann-Whitney p-value at most `alpha / 2`: the two routes share alpha). The classifier sees
at most 20,000 rows a side.

Prediction drift: the model's scores on rows it never learned from, the evaluate step's held-out
predictions on the test split, are the reference; the model scores the current batch (up to 20,000
rows) and the two are compared with the KS test. A shift is a warning: it follows from the
features'. Scores on the training split are no reference (they are overfit), so in CI, where the
current data is the test split itself, prediction drift is skipped; it applies to a new batch.

For the report, the features it draws carry a small picture of both sides in their details: the
drifted ones (at most 12, most significant first), or when none drifted the 3 closest to it (smallest
p-values). Numeric: a 20-bin histogram (equal widths over both sides' 1st to 99th percentiles, the
tails counted in the end bins) and the two ECDFs at about 26 points; categorical: the counts of the 14
commonest categories, the rest as "(other)", and missing values as "(missing)". The prediction
check carries the same for the scores. The gate's reason stays one line: the share rule's sentence,
and the classifier and prediction checks in brief.

With raw reference data the reference ECDF keeps up to 65,536 distinct values (KS and Wasserstein are
then exact); with more, 65,536 quantile points (the KS statistic within 1/65,536). A stored profile
keeps 4,096 (within 1/4,096; see `profile.py`).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import profile
from modelops_ci.gates.profile import CategoricalSummary, NotNumericError, NumericSummary, Profile
from modelops_ci.gates.result import Check, GateResult, Status, error, worst

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.context import GateContext

GATE = "drift"
DEFAULT_ALPHA = 0.05
DEFAULT_CORRECTION = "fdr_bh"
DEFAULT_SHARE = 0.3
RAW_GRID = 65_536
SCIPY_EXACT_ROWS = 10_000  # ks_2samp's exact p-values up to this many rows a side
MIN_ROWS = 5
CLASSIFIER_ROWS = 20_000
MIN_CLASSIFIER_ROWS = 50  # a side: half trains the classifier, half measures it
PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite
NAMES_SHOWN = 5
PICTURED = 12  # drifted features given plot data for the report
QUIET_PICTURED = 3  # features given plot data when none drifted: the closest to it
PICTURE_BINS = 20
PICTURE_LEVELS = np.linspace(0.01, 0.99, 13)  # ECDF points: these quantiles of each side
PICTURE_CATEGORIES = 15


class InputError(ValueError):
    """The data cannot be compared (the gate reports `error`)."""


@dataclass(frozen=True)
class Predictor:
    """The pipeline's model, and its scores on rows it did not learn from (the reference)."""

    model: Any
    inputs: list[str]
    task: str
    reference_scores: np.ndarray  # the evaluate step's held-out predictions

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        rows = frame[self.inputs]
        if self.task == "classification":
            return np.asarray(self.model.predict_proba(rows)[:, 1], dtype=float)
        return np.asarray(self.model.predict(rows), dtype=float)


@dataclass(frozen=True)
class Unavailable:
    """Why prediction drift cannot be tested; `broken` when that is a fault, not a circumstance."""

    reason: str
    broken: bool = False


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
    cumulative = np.cumsum(reference.counts)
    nr, nc = int(cumulative[-1]), len(current)
    quantiles = np.arange(1, PSI_BINS) * nr  # compare cumulative/nr with k/10 in integers
    edges = np.unique(np.searchsorted(cumulative * PSI_BINS, quantiles, side="left"))
    reference_share = np.diff(np.r_[0, cumulative[edges], nr]) / nr
    current_share = np.diff(np.r_[0, np.searchsorted(current, reference.values[edges], side="right"), nc]) / nc
    return psi(reference_share, current_share)


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


# -- categorical features -------------------------------------------------------------------------


def categorical_drift(name: str, reference: CategoricalSummary, current: CategoricalSummary) -> Check:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    categories = np.union1d(reference.categories, current.categories)
    ref_counts, cur_counts = _aligned(reference, categories), _aligned(current, categories)
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


def _aligned(summary: CategoricalSummary, categories: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(categories), dtype=np.int64)
    counts[np.searchsorted(categories, summary.categories)] = summary.counts
    return counts


# -- pictures for the report -------------------------------------------------------------------------


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
    ref_counts, cur_counts = _aligned(reference, categories), _aligned(current, categories)
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
    return f"{check.name}: {verdict} (corrected p={d['p_adjusted']:.2g}): " + "; ".join(parts or ["no values"])


# -- multivariate and predictions -----------------------------------------------------------------


def classifier_test(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str],
                    alpha: float, seed: int = 0) -> Check:
    """Can a classifier tell current rows from reference rows? Held-out ROC AUC and its p-value.

    Each side is cut in half at random; gradient-boosted trees learn on one half and score the other.
    With no drift the held-out labels are exchangeable given the scores, so the Mann-Whitney U test
    of current scores above reference scores (U = AUC n1 n2) is a permutation test of AUC = 0.5
    (scipy's normal approximation with tie correction at these sizes).
    """
    from scipy import stats
    from sklearn.ensemble import HistGradientBoostingClassifier

    threadpoolctl = importlib.import_module("threadpoolctl")  # scikit-learn's own dependency; untyped

    reference = profile.sample_of(reference, CLASSIFIER_ROWS, seed)
    current = profile.sample_of(current, CLASSIFIER_ROWS, seed + 1)
    X, kinds = _design([reference, current], numeric, categorical)
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    rng = np.random.default_rng(seed)
    learn = np.zeros(len(y), dtype=bool)
    for side in (np.flatnonzero(y == 0), np.flatnonzero(y == 1)):
        learn[rng.permutation(side)[: len(side) // 2]] = True
    model = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, early_stopping=False,
                                           categorical_features=kinds, random_state=seed)
    held = ~learn
    # One OpenMP thread: on a busy shared runner, spin-waiting threads made a 0.5 s fit take 2-5 s.
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        model.fit(X[learn], y[learn])
        scores = model.predict_proba(X[held])[:, 1]
    held_current, held_reference = scores[y[held] == 1], scores[y[held] == 0]
    test = stats.mannwhitneyu(held_current, held_reference, alternative="greater")
    auc = float(test.statistic) / (len(held_current) * len(held_reference))
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    status: Status = "fail" if p_value <= alpha else "pass"
    verdict = "tells current rows from reference rows" if status == "fail" else \
        "cannot tell current rows from reference rows"
    reason = (f"a classifier {verdict} (held-out AUC {auc:.3f} on {int(held.sum()):,} rows, p={p_value:.2g}; "
              f"{'at most' if status == 'fail' else 'above'} alpha {alpha:g})")
    return Check("multivariate", status, reason, statistic=auc, p_value=p_value, threshold={"alpha": alpha},
                 n=int(held.sum()), details={"test": "classifier two-sample (AUC, Mann-Whitney)",
                                             "rows_reference": len(reference), "rows_current": len(current),
                                             "subsampled_to": CLASSIFIER_ROWS})


def _design(frames: list[pd.DataFrame], numeric: list[str], categorical: list[str]) -> tuple[np.ndarray, list[bool]]:
    """The rows of `frames` stacked as numbers: categories as codes (shared), missing as NaN."""
    import pandas as pd

    columns, kinds = [], []
    for name in numeric:
        values = np.concatenate([profile.as_float(f[name]) for f in frames])
        values[~np.isfinite(values)] = np.nan
        columns.append(values)
        kinds.append(False)
    for name in categorical:
        codes, uniques = pd.factorize(pd.concat([profile.category_labels(f[name]) for f in frames]))
        columns.append(np.where(codes < 0, np.nan, codes).astype(float))
        kinds.append(len(uniques) <= 255)  # the trees' limit for categories; above, codes are ordinal
    return np.column_stack(columns), kinds


def prediction_drift(predictor: Predictor, current: pd.DataFrame, alpha: float, seed: int = 0) -> Check:
    """KS test of the model's held-out scores (reference) against its scores on current rows."""
    current = profile.sample_of(current, CLASSIFIER_ROWS, seed + 1)
    try:
        cur_scores = predictor.scores(current)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return Check("prediction", "error", f"the model could not score the current rows: {exc}")
    summary = profile.numeric_summary(predictor.reference_scores, RAW_GRID)
    finite = np.sort(cur_scores[np.isfinite(cur_scores)])
    if not summary.n or summary.n < summary.rows or len(finite) < len(cur_scores):
        return Check("prediction", "error", "the model gave NaN or infinite scores: prediction drift cannot be tested")
    statistic, p_value, distance = ks_test(summary, finite)
    shifted = p_value <= alpha
    status: Status = "warn" if shifted else "pass"
    verdict = "the model's scores shifted" if shifted else "the model's scores did not shift significantly"
    reason = (f"{verdict} (KS D={statistic:.3g}, p={p_value:.2g}; mean {summary.mean:.3g} on the held-out rows, "
              f"{float(finite.mean()):.3g} on current rows)")
    return Check("prediction", status, reason, statistic=statistic, p_value=p_value, threshold={"alpha": alpha},
                 n=len(finite), details={"test": "ks", "n_reference": summary.n,
                                         "wasserstein_sd": normalised_wasserstein(distance, summary, finite),
                                         "psi": numeric_psi(summary, finite), "mean_reference": summary.mean,
                                         "mean_current": float(finite.mean()), **numeric_picture(summary, finite)})


# -- the gate -------------------------------------------------------------------------------------


def assess(reference: Profile, current: pd.DataFrame, settings: dict[str, Any], *, seed: int = 0,
           predictor: Predictor | Unavailable | None = None, sources: dict[str, str] | None = None) -> GateResult:
    """The drift gate on a reference profile and the current rows (pure: no files)."""
    alpha = float(settings.get("alpha", DEFAULT_ALPHA))
    correction = str(settings.get("correction", DEFAULT_CORRECTION))
    max_share = float(settings.get("max_drifted_share", DEFAULT_SHARE))
    problem = _unusable(reference, current)
    if problem:
        return error(GATE, problem, alpha=alpha, n=len(current))
    checks = compare(reference, current)
    dataset = decide(checks, alpha, correction, max_share)
    add_pictures(reference, current, checks)
    extra, skipped = _extra_checks(reference, current, checks, settings, alpha, seed, predictor)
    everything = [*checks, dataset, *extra]
    status = worst([c.status for c in everything])
    details = {"correction": correction, "max_drifted_share": max_share, "drifted": dataset.details["drifted"],
               "features": len(checks), "skipped": skipped, **(sources or {})}
    return GateResult(GATE, status, _reason(status, checks, dataset, extra), alpha=alpha, n=len(current),
                      groups={"reference": reference.rows, "current": len(current)}, checks=everything,
                      details=details)


def _unusable(reference: Profile, current: pd.DataFrame) -> str | None:
    if not reference.features:
        return "no features to compare: declare data.features or drift.features"
    absent = [name for name in reference.features if name not in current.columns]
    if absent:
        return f"columns missing from the current data: {', '.join(absent)} (the reference has them)"
    for rows, side in ((reference.rows, "reference"), (len(current), "current")):
        if rows < MIN_ROWS:
            empty = "has no rows" if rows == 0 else f"has only {rows} rows"
            return f"the {side} data {empty}; at least {MIN_ROWS} are needed to test drift"
    return None


def compare(reference: Profile, current: pd.DataFrame) -> list[Check]:
    """Each feature's tests, in the reference's feature order."""

    def numeric(name: str) -> Check:
        try:
            values = profile.as_float(current[name])
        except NotNumericError as exc:
            return Check(name, "error", f"{name} is numeric in the reference but {exc} in the current data",
                         details={"kind": "numeric"})
        return numeric_drift(name, reference.numeric[name], values)

    def categorical(name: str) -> Check:
        return categorical_drift(name, reference.categorical[name], profile.categorical_summary(current[name]))

    return [*profile.parallel(numeric, list(reference.numeric)),
            *profile.parallel(categorical, list(reference.categorical))]


def _extra_checks(reference: Profile, current: pd.DataFrame, checks: list[Check], settings: dict[str, Any],
                  alpha: float, seed: int, predictor: Predictor | Unavailable | None,
                  ) -> tuple[list[Check], dict[str, str]]:
    """The classifier test and prediction drift, each when asked for (true), possible (unset), or off."""
    extra: list[Check] = []
    skipped: dict[str, str] = {}
    usable = [c.name for c in checks if c.status != "error" and c.name in reference.sample.columns]
    numeric = [n for n in usable if n in reference.numeric]
    categorical = [n for n in usable if n in reference.categorical]
    wanted = settings.get("multivariate")
    few = min(len(reference.sample), len(current)) < MIN_CLASSIFIER_ROWS
    why = (f"fewer than {MIN_CLASSIFIER_ROWS} rows on a side" if few else
           "no features in the reference sample" if not usable else None)
    if wanted is False:
        skipped["multivariate"] = "turned off (gates.drift.multivariate: false)"
    elif why:
        if wanted:
            extra.append(Check("multivariate", "error", f"the classifier test cannot run: {why}"))
        else:
            skipped["multivariate"] = why
    else:
        # Two routes can declare dataset drift (the share rule and this test): Bonferroni gives each
        # half of alpha, so a drift-free batch fails at most alpha of the time.
        extra.append(classifier_test(reference.sample, current, numeric, categorical, alpha / 2, seed))
    wanted = settings.get("prediction")
    if isinstance(predictor, Predictor) and (absent := [c for c in predictor.inputs if c not in current.columns]):
        predictor = Unavailable(f"the model's inputs {', '.join(absent)} are not in the current data")
    if predictor is None:
        predictor = Unavailable("no model")
    if wanted is False:
        skipped["prediction"] = "turned off (gates.drift.prediction: false)"
    elif isinstance(predictor, Predictor):
        extra.append(prediction_drift(predictor, current, alpha, seed))
    elif wanted or predictor.broken:
        extra.append(Check("prediction", "error", f"prediction drift cannot be tested: {predictor.reason}"))
    else:
        skipped["prediction"] = predictor.reason
    return extra, skipped


def _reason(status: Status, checks: list[Check], dataset: Check, extra: list[Check]) -> str:
    """One line: the first fault in full (it says what to do) and how many more; else the share rule's
    sentence and the other checks in brief (on a failure, the failing ones only)."""
    if status == "error":
        broken = [c for c in [*checks, *extra] if c.status == "error"]
        more = f"; and {len(broken) - 1} more (see the checks)" if len(broken) > 1 else ""
        return f"cannot assess drift: {broken[0].reason}{more}"
    shown = [c for c in extra if c.status == "fail"] if status == "fail" else extra
    return "; ".join([dataset.reason, *(_brief(c) for c in shown)])


def _brief(check: Check) -> str:
    if check.status == "error" or check.statistic is None or check.p_value is None:
        return check.reason
    if check.name == "multivariate":
        verdict = "tells" if check.status == "fail" else "cannot tell"
        return f"a classifier {verdict} current rows from reference rows (AUC {check.statistic:.3f}, " \
               f"p={check.p_value:.2g})"
    verdict = "shifted" if check.status != "pass" else "did not shift significantly"
    return f"the model's scores {verdict} (KS p={check.p_value:.2g})"


# -- reading the pipeline's data ------------------------------------------------------------------


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    try:
        predictor = _predictor(ctx, settings)
        reference, sources = reference_profile(ctx)
        current, sources["current"] = _current(ctx)
    except InputError as exc:
        return error(GATE, str(exc))
    return assess(reference, current, settings, seed=ctx.step.seed, predictor=predictor, sources=sources)


def reference_profile(ctx: GateContext, grid: int | None = RAW_GRID) -> tuple[Profile, dict[str, str]]:
    """The pipeline's drift reference as a profile: read from a stored profile, or built from data."""
    where = str((ctx.params.get("drift") or {}).get("reference", "train"))
    if where.endswith(".npz"):
        path = _repo_file(ctx, where, "reference")
        try:
            stored = profile.load(path)
        except profile.ProfileError as exc:
            raise InputError(f"drift.reference: {exc}") from None
        numeric, categorical = _features(ctx, None, stored)
        absent = [n for n in [*numeric, *categorical] if n not in stored.features]
        if absent:
            raise InputError(f"drift.reference: the profile {where} has no {', '.join(absent)}: rebuild it")
        kept = Profile(stored.rows, {n: stored.numeric[n] for n in numeric},
                       {n: stored.categorical[n] for n in categorical}, stored.sample)
        return kept, {"reference": where}
    frame = ctx.frame("train") if where == "train" else _read_table(ctx, where, "reference")
    numeric, categorical = _features(ctx, frame, None)
    absent = [n for n in [*numeric, *categorical] if n not in frame.columns]
    if absent:
        raise InputError(f"columns missing from the reference data: {', '.join(absent)}")
    try:
        built = profile.build(frame, numeric, categorical, grid=grid, sample_rows=CLASSIFIER_ROWS,
                              seed=ctx.step.seed)
    except NotNumericError as exc:
        raise InputError(f"the reference data's column {exc}: declare it categorical") from None
    return built, {"reference": ctx.step.layout.train if where == "train" else where}


def _current(ctx: GateContext) -> tuple[pd.DataFrame, str]:
    where = (ctx.params.get("drift") or {}).get("current")
    if where is None:
        return ctx.frame("test"), ctx.step.layout.test
    folder = ctx.step.path(str(where))
    if folder.is_dir():  # a folder of batches: the newest one, as `monitor` reads it
        from modelops_ci.steps.frames import newest_batch

        newest = newest_batch(folder)
        if newest is not None:
            where = newest.relative_to(ctx.step.root).as_posix()
    return _read_table(ctx, str(where), "current"), str(where)


def _features(ctx: GateContext, frame: pd.DataFrame | None, stored: Profile | None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features to compare: drift.features, else the data's, else all profiled."""
    import pandas as pd

    from modelops_ci.steps.frames import declared_features, feature_columns

    data = ctx.params.get("data") or {}
    chosen = list((ctx.params.get("drift") or {}).get("features") or [])
    if stored is not None:
        declared_numeric, declared_categorical = declared_features(data)
        numeric, categorical = (declared_numeric, declared_categorical) if declared_numeric or declared_categorical \
            else (list(stored.numeric), list(stored.categorical))
    else:
        assert frame is not None
        numeric, categorical = feature_columns(data, frame)
        if not numeric and not categorical and ctx.params.get("task") == "forecast":
            numeric = [data["target"]["column"]]  # a univariate series: its own values are what can drift
    if not chosen:
        return numeric, categorical

    def is_numeric(name: str) -> bool:
        if name in numeric or (stored is not None and name in stored.numeric):
            return True
        if name in categorical or stored is not None or frame is None or name not in frame:
            return False
        return bool(pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]))

    return [n for n in chosen if is_numeric(n)], [n for n in chosen if not is_numeric(n)]


def _repo_file(ctx: GateContext, relative: str, key: str) -> Path:
    path = ctx.step.path(relative)
    if not path.is_file():
        raise InputError(f"drift.{key}: {relative} does not exist: check the path (relative to the repo root)")
    return path


def _read_table(ctx: GateContext, relative: str, key: str) -> pd.DataFrame:
    import pandas as pd

    path = _repo_file(ctx, relative, key)
    readers = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"drift.{key}: {relative}: use a .parquet or .csv file"
                         + (" (or a .npz drift profile)" if key == "reference" else ""))
    try:
        frame: pd.DataFrame = reader(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"drift.{key}: {relative} cannot be read: {exc}") from None
    return frame


def _predictor(ctx: GateContext, settings: dict[str, Any]) -> Predictor | Unavailable | None:
    """The trained model with its held-out scores, or why prediction drift cannot be tested.

    Scores on the training rows are no reference: the model learned those rows, so its scores there
    are more extreme than on any new data (on credit-risk a no-drift split looked shifted, p < 1e-6).
    The reference is the evaluate step's predictions on the test split, so the current data must be
    another batch (`drift.current`).
    """
    if settings.get("prediction") is False:
        return None
    if ctx.params.get("task") == "forecast":
        return Unavailable("a forecast has no per-row scores to compare")
    if not (ctx.params.get("drift") or {}).get("current"):
        return Unavailable("the current data is the test split, whose held-out predictions are the reference; "
                           "prediction drift compares them with a new batch (drift.current)")
    layout = ctx.step.layout
    for needed in (layout.model, layout.predictions):
        if not ctx.step.path(needed).is_file():
            return Unavailable(f"{needed} does not exist: run the pipeline up to the evaluate stage first")
    from modelops_ci.errors import ModelopsError
    from modelops_ci.ml import model_store, model_types

    try:
        model, facts = model_store.load(ctx.step.path(layout.model), ctx.step.path(layout.model_card),
                                        extra_types=model_types.policy_types(ctx.params))
    except ModelopsError as exc:
        return Unavailable(str(exc), broken=True)
    column = "y_score" if ctx.params["task"] == "classification" else "y_pred"
    predictions = ctx.frame("predictions")
    if column not in predictions:
        return Unavailable(f"{layout.predictions} has no {column} column: re-run the evaluate stage", broken=True)
    return Predictor(model, [*facts.get("numeric", []), *facts.get("categorical", [])], str(ctx.params["task"]),
                     predictions[column].to_numpy(dtype=float))
