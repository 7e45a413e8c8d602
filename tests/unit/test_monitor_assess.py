"""A window's health against the reference (monitor/assess.py): no drift passes, a shifted feature is
drift naming it, a thin window is inconclusive, a missing feature is an error, a score shift warns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops_ci.gates import profile
from modelops_ci.gates.drift import univariate
from modelops_ci.monitor.assess import Settings, assess
from modelops_ci.monitor.sketch import NumericSketch, WindowProfile

NUMERIC = ["income", "debt", "age"]
CATEGORICAL = ["region"]


def rows(seed: int, n: int, income_shift: float = 0.0, score_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(50 + 10 * income_shift, 10, n), "debt": rng.gamma(2.0, 5.0, n),
                         "age": rng.integers(18, 80, n).astype(float),
                         "region": rng.choice(["north", "south", "east"], n),
                         "score": np.clip(rng.beta(2, 5, n) + score_shift, 0, 1)})


@pytest.fixture(scope="module")
def reference() -> profile.Profile:
    return profile.build(rows(0, 20_000), NUMERIC, CATEGORICAL, grid=univariate.RAW_GRID)


@pytest.fixture(scope="module")
def reference_scores() -> profile.NumericSummary:
    return profile.numeric_summary(rows(1, 5000)["score"].to_numpy(dtype=float))


def window(frame: pd.DataFrame, numeric: list[str] = NUMERIC) -> WindowProfile:
    return WindowProfile.build(frame, "credit", "v1", 0.0, 3600.0, numeric, CATEGORICAL, score="score")


def test_a_window_like_the_reference_passes(reference, reference_scores) -> None:  # type: ignore[no-untyped-def]
    found = assess(window(rows(2, 8000)), reference, reference_scores=reference_scores)
    assert (found.status, found.drifted, found.prediction_shifted) == ("pass", [], False)
    assert found.reason.startswith("none of 4 features changed significantly")


def test_half_an_sd_shift_in_one_feature_is_drift_naming_it(reference) -> None:  # type: ignore[no-untyped-def]
    shifted = window(rows(3, 8000, income_shift=0.5))
    found = assess(shifted, reference, Settings(max_drifted_share=0.2))
    assert (found.status, found.drifted) == ("drift", ["income"])
    lenient = assess(shifted, reference)  # the drift gate's default share rule allows 30%: 1 of 4 is not drift
    assert (lenient.status, lenient.drifted) == ("pass", ["income"])
    income = next(c for c in found.checks if c.name == "income")
    assert income.details["wasserstein_sd"] == pytest.approx(0.5, abs=0.05)
    assert "1 of 4 features changed significantly (income)" in found.reason


def test_the_scores_shifting_is_a_warning_beside_the_inputs(reference, reference_scores) -> None:  # type: ignore[no-untyped-def]
    found = assess(window(rows(4, 8000, score_shift=0.1)), reference, reference_scores=reference_scores)
    prediction = next(c for c in found.checks if c.name == "prediction")
    assert (found.prediction_shifted, prediction.status) == (True, "warn")
    assert found.reason.endswith("the model's scores shifted")


def test_fewer_rows_than_min_samples_is_inconclusive_not_an_alert(reference) -> None:  # type: ignore[no-untyped-def]
    found = assess(window(rows(5, 120, income_shift=3.0)), reference, Settings(min_samples=500))
    assert (found.status, found.checks) == ("inconclusive", [])
    assert found.reason == "120 rows, fewer than min_samples 500: not judged"


def test_a_feature_the_log_lacks_is_an_error_naming_it(reference) -> None:  # type: ignore[no-untyped-def]
    found = assess(window(rows(6, 3000), numeric=["income", "debt"]), reference)
    assert found.status == "error"
    assert found.reason.startswith("the window has no age: the reference has them")


def test_infinite_values_are_an_error_not_a_verdict(reference) -> None:  # type: ignore[no-untyped-def]
    frame = rows(7, 3000)
    frame.loc[:20, "debt"] = np.inf
    found = assess(window(frame), reference)
    assert found.status == "error" and "debt has infinite values" in found.reason


def test_no_drift_flags_at_most_alpha_of_windows_after_the_correction(reference) -> None:  # type: ignore[no-untyped-def]
    """60 windows drawn like the reference: the dataset rule (any drifted feature, the strictest)
    flags about alpha of them at most; P(Binomial(60, 0.05) >= 9) < 0.01."""
    strict = Settings(max_drifted_share=0.0)
    flagged = sum(assess(window(rows(100 + seed, 2000)), reference, strict).status == "drift" for seed in range(60))
    assert flagged <= 8


def test_sketch_summaries_of_scores_feed_the_check_too() -> None:
    scores = NumericSketch.of(np.linspace(0, 1, 50_000))
    assert scores.summary().n == 50_000 and not scores.summary().exact
