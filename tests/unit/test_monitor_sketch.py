"""Window profiles (monitor/sketch.py): merged sketches against the raw rows they summarise, with
the tolerance the sketches state, exact counts and moments, and files that cannot run code."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelops_ci.errors import UserError
from modelops_ci.gates import profile
from modelops_ci.gates.drift import univariate
from modelops_ci.monitor import sketch
from modelops_ci.monitor.sketch import RANK_ERROR, WindowProfile

NUMERIC = ["income", "debt"]
CATEGORICAL = ["region"]


def rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    income = rng.normal(50 + shift * 10, 10, n)
    income[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"income": income, "debt": rng.gamma(2.0, 5.0, n),
                         "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
                         "score": rng.beta(2, 5, n)})


def window(frame: pd.DataFrame, hour: int = 0) -> WindowProfile:
    return WindowProfile.build(frame, "credit", "v1", hour * 3600.0, (hour + 1) * 3600.0, NUMERIC, CATEGORICAL,
                               score="score")


@pytest.fixture(scope="module")
def hours() -> list[pd.DataFrame]:
    rng = np.random.default_rng(7)
    return [rows(rng, 6000, shift=0.05 * hour) for hour in range(8)]


def test_merged_hours_give_the_raw_rows_ks_within_the_stated_rank_error(hours: list[pd.DataFrame]) -> None:
    """8 hours of 6,000 rows, merged without rows: each feature's KS statistic against a reference is
    within RANK_ERROR of the one on the 48,000 raw rows; the Wasserstein distance within RANK_ERROR
    times the values' range (the integral of an ECDF error of at most RANK_ERROR); and the sketch's
    p-value is never smaller than the raw rows' (a sketch adds no false alarm)."""
    reference = profile.build(rows(np.random.default_rng(1), 20_000), NUMERIC, CATEGORICAL,
                              grid=univariate.RAW_GRID)
    merged = sketch.merge_all([window(frame, hour) for hour, frame in enumerate(hours)])
    raw = pd.concat(hours, ignore_index=True)
    assert merged.windows == 8 and merged.rows == len(raw)
    for name in NUMERIC:
        values = raw[name].to_numpy(dtype=float)
        finite = np.sort(values[np.isfinite(values)])
        current = merged.numeric[name].summary()
        assert not current.exact
        raw_ks, raw_distance = univariate.ecdf_distances(reference.numeric[name], finite)
        sketched_ks, sketched_distance = univariate.summary_distances(reference.numeric[name], current)
        assert abs(sketched_ks - raw_ks) <= RANK_ERROR
        points = reference.numeric[name].values
        spread = max(finite[-1], points[-1]) - min(finite[0], points[0])
        assert abs(sketched_distance - raw_distance) <= RANK_ERROR * spread
        raw_check = univariate.numeric_drift(name, reference.numeric[name], values)
        sketched = univariate.numeric_drift_summarised(name, reference.numeric[name], current, RANK_ERROR)
        assert sketched.p_value >= raw_check.p_value


def test_counts_missing_means_and_variances_merge_exactly(hours: list[pd.DataFrame]) -> None:
    merged = sketch.merge_all([window(frame, hour) for hour, frame in enumerate(hours)])
    raw = pd.concat(hours, ignore_index=True)
    income = raw["income"].to_numpy(dtype=float)
    finite = income[np.isfinite(income)]
    summary = merged.numeric["income"]
    assert (summary.moments.n, summary.missing, summary.infinite) == (len(finite), int(np.isnan(income).sum()), 0)
    assert summary.moments.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert summary.moments.std == pytest.approx(finite.std(), rel=1e-9)
    counted = merged.categorical["region"]
    assert counted.exact
    expected = raw["region"].value_counts()
    found = counted.summary()
    assert dict(zip(found.categories, found.counts, strict=True)) == {k: int(v) for k, v in expected.items()}


def test_a_small_window_is_exact_and_tested_as_the_raw_rows_are() -> None:
    frame = rows(np.random.default_rng(3), 300, shift=0.3)
    reference = profile.build(rows(np.random.default_rng(4), 2000), NUMERIC, CATEGORICAL, grid=None)
    current = window(frame).numeric["income"].summary()
    assert current.exact
    from_summary = univariate.numeric_drift_summarised("income", reference.numeric["income"], current, RANK_ERROR)
    from_rows = univariate.numeric_drift("income", reference.numeric["income"], frame["income"].to_numpy(dtype=float))
    assert (from_summary.statistic, from_summary.p_value) == (from_rows.statistic, from_rows.p_value)


def test_a_profile_round_trips_through_its_file_and_a_damaged_one_is_refused(tmp_path, hours) -> None:  # type: ignore[no-untyped-def]
    original = window(hours[0], hour=5)
    path = tmp_path / "credit" / "v1" / "5.npz"
    sketch.save(original, path)
    loaded = sketch.load(path)
    assert (loaded.model, loaded.version, loaded.start, loaded.end, loaded.rows) == ("credit", "v1", 18000.0,
                                                                                      21600.0, 6000)
    for name in NUMERIC:
        before, after = original.numeric[name].summary(), loaded.numeric[name].summary()
        assert np.array_equal(before.values, after.values) and np.array_equal(before.counts, after.counts)
        assert loaded.numeric[name].moments == original.numeric[name].moments
    assert loaded.scores is not None and loaded.scores.moments == original.scores.moments  # type: ignore[union-attr]
    assert list(loaded.categorical["region"].summary().counts) == list(original.categorical["region"].summary().counts)
    damaged = path.read_bytes()[:-40]
    path.write_bytes(damaged)
    with pytest.raises(UserError, match=re.escape(f"{path}: not a readable window profile")):
        sketch.load(path)
    with pytest.raises(UserError, match="not a readable window profile"):
        sketch.from_bytes(b"PK\x03\x04 not a zip", "pasted")


def test_windows_of_another_version_or_other_features_do_not_merge(hours: list[pd.DataFrame]) -> None:
    first = window(hours[0])
    other = WindowProfile.build(hours[1], "credit", "v2", 0.0, 3600.0, NUMERIC, CATEGORICAL)
    with pytest.raises(ValueError, match="cannot merge credit v2 into credit v1"):
        first.merged(other)
    fewer = WindowProfile.build(hours[1], "credit", "v1", 0.0, 3600.0, ["income"], CATEGORICAL)
    with pytest.raises(ValueError, match="other features"):
        first.merged(fewer)


def test_the_stated_rank_error_is_the_sketchs_own() -> None:
    from datasketches import kll_doubles_sketch

    assert kll_doubles_sketch.get_normalized_rank_error(sketch.KLL_K, False) <= RANK_ERROR
    assert RANK_ERROR - kll_doubles_sketch.get_normalized_rank_error(sketch.KLL_K, False) < 1e-4
    assert stats.kstwobign.sf(0) == 1.0  # a statistic within the rank error tests as no shift at all
