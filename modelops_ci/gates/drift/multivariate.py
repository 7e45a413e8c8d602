"""Beyond one feature at a time: can a classifier tell current rows from reference rows, and do the
model's scores shift?

The classifier sees at most 20,000 rows a side; it declares drift when its held-out ROC AUC has a
Mann-Whitney p-value at most `alpha / 2` (the share rule of the per-feature tests has the other half).

Prediction drift: the model's scores on rows it never learned from, the evaluate step's held-out
predictions on the test split, are the reference; the model scores the current batch (up to 20,000
rows) and the two are compared with the KS test. A shift is a warning: it follows from the
features'.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import profile
from modelops_ci.gates.drift.pictures import numeric_picture
from modelops_ci.gates.drift.univariate import RAW_GRID, ks_test, normalised_wasserstein, numeric_psi
from modelops_ci.gates.result import Check, Status

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.profile import Profile

CLASSIFIER_ROWS = 20_000
MIN_CLASSIFIER_ROWS = 50  # a side: half trains the classifier, half measures it
CLASSIFIER_ALPHA_SHARE = 0.5  # of the gate's alpha; the share rule of the per-feature tests has the rest


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


def extra_checks(reference: Profile, current: pd.DataFrame, checks: list[Check], settings: dict[str, Any],
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
        classifier_alpha = alpha * CLASSIFIER_ALPHA_SHARE
        extra.append(classifier_test(reference.sample, current, numeric, categorical, classifier_alpha, seed))
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
    reason = (f"{verdict} (KS D={statistic:.3g}, p={p_value:.2g}, alpha {alpha:g}; mean {summary.mean:.3g} on the "
              "held-out rows, "
              f"{float(finite.mean()):.3g} on current rows)")
    return Check("prediction", status, reason, statistic=statistic, p_value=p_value, threshold={"alpha": alpha},
                 n=len(finite), details={"test": "ks", "n_reference": summary.n,
                                         "wasserstein_sd": normalised_wasserstein(distance, summary, finite),
                                         "psi": numeric_psi(summary, finite), "mean_reference": summary.mean,
                                         "mean_current": float(finite.mean()), **numeric_picture(summary, finite)})
