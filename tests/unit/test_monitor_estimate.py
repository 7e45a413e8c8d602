"""Performance without labels, then with them (monitor/estimate.py): under covariate shift the
estimate from calibrated scores lands on the accuracy and AUC the labels then give, its interval
covers them, and the realised metrics are scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from modelops_ci.gates.result import CannotEvaluate
from modelops_ci.monitor.estimate import calibrate, estimated, realised


def world(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """(the model's scores, the true labels): P(y=1 | x) = sigmoid(2x - 0.5) whatever the shift of
    x; the model's score sigmoid(1.2x) is monotone in it but not calibrated."""
    x = rng.normal(shift, 1.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 0.5)))).astype(float)
    return 1 / (1 + np.exp(-1.2 * x)), labels


@pytest.fixture(scope="module")
def calibration():  # type: ignore[no-untyped-def]
    scores, labels = world(np.random.default_rng(0), 20_000, shift=0.0)
    return calibrate(scores, labels)


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc"])
def test_under_covariate_shift_the_estimate_lands_on_what_the_labels_give(calibration, metric: str) -> None:  # type: ignore[no-untyped-def]
    scores, labels = world(np.random.default_rng(1), 5000, shift=2.0)
    guess = estimated(calibration, scores, metric)
    truth = realised(labels, scores, metric, resamples=200)
    assert guess.low <= truth.value <= guess.high
    assert abs(guess.value - truth.value) <= (guess.high - guess.low) / 2
    assert (guess.realised, truth.realised, guess.n) == (False, True, 5000)


def test_the_estimate_follows_a_shift_that_moves_the_accuracy(calibration) -> None:  # type: ignore[no-untyped-def]
    before = estimated(calibration, world(np.random.default_rng(2), 5000, shift=0.0)[0], "accuracy")
    after = estimated(calibration, world(np.random.default_rng(1), 5000, shift=2.0)[0], "accuracy")
    assert before.value == pytest.approx(0.77, abs=0.015)  # P(y | x) is fixed: the shift alone moves accuracy
    assert after.value == pytest.approx(0.917, abs=0.01)


def test_the_interval_covers_the_realised_accuracy_in_most_windows(calibration) -> None:  # type: ignore[no-untyped-def]
    """40 windows of 800 rows: a 95% interval should miss about 2; missing 6 or more has P < 0.05."""
    covered = 0
    for seed in range(40):
        scores, labels = world(np.random.default_rng(100 + seed), 800, shift=0.5)
        guess = estimated(calibration, scores, "accuracy", seed=seed)
        covered += guess.low <= accuracy_score(labels, scores >= 0.5) <= guess.high
    assert covered >= 35


def test_realised_metrics_are_scikit_learns_with_a_ci_around_them() -> None:
    scores, labels = world(np.random.default_rng(3), 3000, shift=0.2)
    accuracy = realised(labels, scores, "accuracy", resamples=300)
    auc = realised(labels, scores, "roc_auc", resamples=300)
    assert accuracy.value == pytest.approx(accuracy_score(labels, scores >= 0.5))
    assert auc.value == pytest.approx(roc_auc_score(labels, scores))
    assert accuracy.low < accuracy.value < accuracy.high and auc.low < auc.value < auc.high


def test_what_cannot_be_calibrated_or_estimated_says_why(calibration) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CannotEvaluate, match="50 reference rows with a score and a label: at least 100"):
        calibrate(np.linspace(0, 1, 50), np.zeros(50))
    with pytest.raises(CannotEvaluate, match="labels must be 0 or 1"):
        calibrate(np.linspace(0, 1, 200), np.full(200, 2.0))
    with pytest.raises(CannotEvaluate, match="f1 cannot be estimated without labels"):
        estimated(calibration, np.linspace(0, 1, 10), "f1")
    with pytest.raises(CannotEvaluate, match="no scores"):
        estimated(calibration, np.array([np.nan]), "accuracy")
