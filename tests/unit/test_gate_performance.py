"""The performance gate: bootstrap CIs that agree with scikit-learn, decided on the CI bound."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from modelops_ci.gates import bootstrap
from modelops_ci.gates.performance import (
    assess,
    classification_sample,
    point,
    regression_sample,
)
from modelops_ci.gates.result import CannotEvaluate


def _scores(n: int, seed: int = 0, signal: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(signal * y + rng.random(n) * (1 - signal), 0, 1)


@pytest.mark.parametrize("n", [200, 50_000])  # exact rows, then binned cells
def test_point_estimates_equal_scikit_learn(n: int) -> None:
    y, s = _scores(n)
    sample = classification_sample(y, s)
    p = (s >= 0.5).astype(int)
    expected = {"roc_auc": sk.roc_auc_score(y, s), "accuracy": sk.accuracy_score(y, p),
                "f1": sk.f1_score(y, p), "precision": sk.precision_score(y, p), "recall": sk.recall_score(y, p),
                "brier": sk.brier_score_loss(y, s), "log_loss": sk.log_loss(y, s)}
    for name, value in expected.items():
        assert point(sample, name) == pytest.approx(value, rel=1e-9), name


def test_regression_points_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(10, 2, 500)
    p = y + rng.normal(0, 1, 500)
    sample = regression_sample(y, p)
    assert point(sample, "rmse") == pytest.approx(sk.root_mean_squared_error(y, p))
    assert point(sample, "mae") == pytest.approx(sk.mean_absolute_error(y, p))
    assert point(sample, "r2") == pytest.approx(sk.r2_score(y, p))


def resampled_aucs(y: np.ndarray, s: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """The textbook bootstrap, all draws at once: rows resampled with replacement, each resample's
    AUC in its rank form (the positives' mean rank; ties share theirs), as scikit-learn computes it."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), (draws, len(y)))
    labels, scores = y[rows], s[rows]
    positives = labels.sum(axis=1)
    negatives = len(y) - positives
    both = (positives > 0) & (negatives > 0)
    ranks = stats.rankdata(scores[both], axis=1)
    n1, n0 = positives[both], negatives[both]
    aucs: np.ndarray = ((ranks * labels[both]).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    for draw in range(10):
        assert aucs[draw] == pytest.approx(sk.roc_auc_score(labels[both][draw], scores[both][draw]), abs=1e-12)
    return aucs


def test_exact_bootstrap_matches_a_plain_resampling_loop() -> None:
    """Same distribution as the textbook loop (different draws): compare quantiles."""
    y, s = _scores(300, seed=3)
    sample = classification_sample(y, s)
    from modelops_ci.gates.performance import metric

    fast = bootstrap.distribution(sample.cells, metric(sample, "roc_auc"), 4000, seed=1)
    slow = resampled_aucs(y, s, 4000, seed=2)  # 4,000 draws pin these quantiles to about 0.0015
    assert np.percentile(fast, [2.5, 50, 97.5]) == pytest.approx(np.percentile(slow, [2.5, 50, 97.5]), abs=0.01)


def test_ci_contains_the_estimate_and_shrinks_with_n() -> None:
    widths = []
    for n in (500, 5000):
        result = assess(classification_sample(*_scores(n)), {"metrics": {"roc_auc": {"min": 0.5}}})
        check = result.checks[0]
        assert check.ci is not None and check.statistic is not None
        low, high = check.ci
        assert low <= check.statistic <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_decided_on_the_bound_not_the_point() -> None:
    sample = classification_sample(*_scores(300, seed=4))
    estimate = point(sample, "roc_auc")
    # a threshold just below the point estimate: the point clears it, the CI lower bound does not
    result = assess(sample, {"metrics": {"roc_auc": {"min": estimate - 0.005}}})
    assert result.status == "fail"
    assert "not surely at least" in result.reason
    assert assess(sample, {"metrics": {"roc_auc": {"min": estimate - 0.2}}}).status == "pass"
    brier = point(sample, "brier")
    assert assess(sample, {"metrics": {"brier": {"max": brier + 0.001}}}).status == "fail"


def test_same_seed_same_result_other_seed_other_draws() -> None:
    sample = classification_sample(*_scores(400))
    settings = {"metrics": {"accuracy": {"min": 0.5}}}
    assert assess(sample, settings, seed=5).checks[0].ci == assess(sample, settings, seed=5).checks[0].ci
    assert assess(sample, settings, seed=5).checks[0].ci != assess(sample, settings, seed=6).checks[0].ci


@pytest.mark.parametrize(("labels", "scores", "message"), [
    ([0, 1] * 10, [0.2, np.nan] * 10, "NaN or infinite"),
    ([0, 1] * 10, [0.2, np.inf] * 10, "NaN or infinite"),
    ([0, 1] * 10, [0.2, 1.3] * 10, "outside [0, 1]"),
    ([0, 1] * 10, [0.2, 0.8] * 9, "18 predictions for 20 labels"),
    ([0, 1] * 3, [0.2, 0.8] * 3, "at least 10"),
    ([0, 1] * 10, ["n/a", 0.8] * 10, "are not numbers"),
    ([0, 1] * 10, [[0.8, 0.2], [0.3]] * 10, "are not numbers"),  # per-class lists of a broken writer
])
def test_bad_predictions_are_input_errors(labels: list[int], scores: list[float], message: str) -> None:
    with pytest.raises(CannotEvaluate, match=message.replace("[", r"\[").replace("]", r"\]")):
        classification_sample(labels, scores)


def test_one_class_hold_out_is_an_error_not_a_pass() -> None:
    sample = classification_sample([1] * 30, np.linspace(0.1, 0.9, 30))
    result = assess(sample, {"metrics": {"roc_auc": {"min": 0.7}}})
    assert result.status == "error"
    assert "undefined" in result.reason


def test_a_million_predictions_get_a_tight_ci_around_scikit_learns_auc() -> None:
    """At scale (the speed is benchmarks/bench_bootstrap.py's): 1,000 resamples of 1,000,000 rows."""
    y, s = _scores(1_000_000)
    result = assess(classification_sample(y, s), {"metrics": {"roc_auc": {"min": 0.5}}})
    auc = result.checks[0]
    assert result.status == "pass" and auc.ci is not None and auc.statistic is not None
    assert auc.statistic == pytest.approx(sk.roc_auc_score(y, s), abs=1e-6)
    assert auc.ci[0] < auc.statistic < auc.ci[1] and auc.ci[1] - auc.ci[0] < 0.005
