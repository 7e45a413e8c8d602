"""The fairness gate: its numbers are fairlearn's, its CIs behave, bad input is an `error` with a reason
(`CannotEvaluate` inside, never another exception, never a silent 0/0), and it runs on a real
pipeline's predictions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fl

from modelops_ci import gates
from modelops_ci.gates import fairness
from modelops_ci.gates.context import GateContext
from modelops_ci.gates.result import CannotEvaluate, GateResult
from modelops_ci.steps.context import StepContext
from tests.helpers.gates import check, json_safe

FAIRLEARN = {
    "demographic_parity_ratio": fl.demographic_parity_ratio,
    "demographic_parity_difference": fl.demographic_parity_difference,
    "equalized_odds_ratio": fl.equalized_odds_ratio,
    "equalized_odds_difference": fl.equalized_odds_difference,
    "equal_opportunity_ratio": fl.equal_opportunity_ratio,
    "equal_opportunity_difference": fl.equal_opportunity_difference,
}
LENIENT = {m: ({"min": 0.0} if m.endswith("ratio") else {"max": 1.0}) for m in FAIRLEARN}


def people(n: int, seed: int = 0, unfair: float = 0.0, tiny: int = 0, band_gap: float = 0.1) -> pd.DataFrame:
    """Hold-out predictions: region and band groups, labels (more positives in the younger band by
    `band_gap`), and predictions whose selection rate is lower by `unfair` for region 'south';
    `tiny` extra rows in a region 'island'."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n, p=[0.4, 0.35, 0.25])
    band = rng.choice(["[0, 40)", "[40, 120)"], n)
    y = (rng.random(n) < np.where(band == "[0, 40)", 0.25 + band_gap, 0.25)).astype(int)
    chance = np.where(y == 1, 0.7, 0.2) - np.where(region == "south", unfair, 0.0)
    frame = pd.DataFrame({"y_true": y, "y_pred": (rng.random(n) < chance).astype(int),
                          "region": region, "band": band})
    if tiny:
        island = pd.DataFrame({"y_true": [1, 0] * tiny, "y_pred": [1, 0] * tiny,
                               "region": "island", "band": "[0, 40)"})[:tiny]
        frame = pd.concat([frame, island], ignore_index=True)
    return frame


def sample(frame: pd.DataFrame, features: tuple[str, ...] = ("region", "band")) -> fairness.Sample:
    return fairness.make_sample(frame["y_true"], frame["y_pred"], {f: frame[f] for f in features},
                                outcome="default = yes")


def assess(frame: pd.DataFrame, features: tuple[str, ...] = ("region", "band"), seed: int = 0,
           resamples: int = 400, **settings: Any) -> GateResult:
    return fairness.assess(sample(frame, features), settings, seed=seed, resamples=resamples)


@pytest.fixture(scope="module")
def shared_run() -> Callable[..., GateResult]:
    """The gate on `people(n, unfair=unfair)` with both features, run once per distinct call and shared by
    the tests (or parametrized cases) that read different parts of that same run; they only read it.
    `metric` limits the policy to that one metric (at `LENIENT`'s bound); None keeps the defaults."""

    @functools.cache
    def run(n: int, unfair: float, resamples: int, metric: str | None = None) -> GateResult:
        settings = {} if metric is None else {"metrics": {metric: LENIENT[metric]}}
        return assess(people(n, unfair=unfair), resamples=resamples, **settings)

    return run


def table(result: GateResult, view: str) -> dict[str, dict[str, Any]]:
    views = {v["name"]: v for v in result.details["views"]}
    return {row["group"]: row for row in views[view]["groups"]}


# --- the numbers are fairlearn's ------------------------------------------------------------------


@pytest.mark.parametrize("metric", sorted(FAIRLEARN))
@pytest.mark.parametrize("features", [("region",), ("band",), ("region", "band")])
def test_point_values_equal_fairlearns_own_functions(metric: str, features: tuple[str, ...],
                                                    shared_run: Callable[..., GateResult]) -> None:
    frame = people(3000, unfair=0.08)
    # the run is the same for every `features` (it always assesses all three views): made once per metric
    result = shared_run(3000, 0.08, 50, metric)

    expected = FAIRLEARN[metric](frame["y_true"], frame["y_pred"], sensitive_features=frame[list(features)])
    assert check(result, f"{' & '.join(features)}: {metric}").statistic == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("features", [("region",), ("region", "band")])
def test_group_table_equals_metricframe_by_group(features: tuple[str, ...],
                                                shared_run: Callable[..., GateResult]) -> None:
    frame = people(2000)
    result = shared_run(2000, 0.0, 50)  # one run for both `features`: it holds every view's table
    expected = fl.MetricFrame(
        metrics={"selection_rate": fl.selection_rate, "true_positive_rate": fl.true_positive_rate,
                 "false_positive_rate": fl.false_positive_rate, "n": fl.count},
        y_true=frame["y_true"], y_pred=frame["y_pred"], sensitive_features=frame[list(features)]).by_group

    rows = table(result, " & ".join(features))
    assert len(rows) == len(expected)
    for key, values in expected.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        row = rows[" & ".join(f"{f}={v}" for f, v in zip(features, key, strict=True))]
        assert row["n"] == values["n"] == result.groups[row["group"]]
        for rate in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            assert row[rate] == pytest.approx(values[rate], abs=1e-12)
        in_group = np.logical_and.reduce([frame[f] == v for f, v in zip(features, key, strict=True)])
        assert row["accuracy"] == pytest.approx((frame["y_true"] == frame["y_pred"])[in_group].mean())
        assert row["positives"] == frame["y_true"][in_group].sum()
        assert row["status"] == "ok"


@pytest.fixture(scope="module")
def region_band_groups() -> tuple[pd.DataFrame, fairness.ViewGroups]:
    """The region & band view's groups of `people(1500, unfair=0.1)`, built once for every metric."""
    frame = people(1500, unfair=0.1)
    people_ = fairness.population(sample(frame))
    return frame, fairness.view_groups(people_, fairness.View(("region", "band")), 30)


@pytest.mark.parametrize("metric", sorted(FAIRLEARN))
def test_bootstrap_statistic_at_the_observed_counts_is_the_point_value(
        metric: str, region_band_groups: tuple[pd.DataFrame, fairness.ViewGroups]) -> None:
    frame, groups = region_band_groups

    at_sample = fairness.disparity(metric, fairness.rates_from_counts(groups.counts[None, :, :]))

    expected = FAIRLEARN[metric](frame["y_true"], frame["y_pred"], sensitive_features=frame[["region", "band"]])
    assert at_sample[0] == pytest.approx(expected, abs=1e-12)


def test_small_groups_are_listed_and_left_out_of_disparities_computed_like_fairlearn_on_the_rest() -> None:
    frame = people(2000, tiny=3)
    result = assess(frame, ("region",), metrics=LENIENT)

    sizes = check(result, "region: groups")
    assert sizes.status == "warn"
    assert "region 'island' (3 rows)" in sizes.reason and "fewer than 30 rows" in sizes.reason
    island = table(result, "region")["region=island"]
    assert (island["n"], island["status"]) == (3, "insufficient data")
    assert result.groups is not None and result.groups["region=island"] == 3
    assert result.status == "warn"
    assert "region 'island'" in result.reason
    rest = frame[frame["region"] != "island"]
    for metric, function in FAIRLEARN.items():
        found = check(result, f"region: {metric}")
        assert found.statistic == pytest.approx(function(rest["y_true"], rest["y_pred"],
                                                         sensitive_features=rest["region"]))
        assert "region=island" not in found.details["groups"]
        assert found.n == len(rest)


def test_min_group_size_comes_from_the_policy() -> None:
    frame = people(2000, tiny=3)

    assert check(assess(frame, ("region",), min_group_size=3), "region: groups").status == "pass"
    assert check(assess(frame, ("region",), min_group_size=4), "region: groups").status == "warn"


# --- the confidence intervals ------------------------------------------------------------------------


def test_ci_contains_the_point_estimate_and_shrinks_with_n() -> None:
    widths = {}
    for n in (2_000, 40_000):
        result = assess(people(n, unfair=0.05), ("region",), metrics=LENIENT)
        for metric in FAIRLEARN:
            found = check(result, f"region: {metric}")
            assert found.ci is not None and found.statistic is not None
            low, high = found.ci
            assert low <= found.statistic <= high, (metric, n, found.ci, found.statistic)
            widths[metric, n] = high - low
    for metric in FAIRLEARN:
        assert widths[metric, 40_000] < widths[metric, 2_000] / 2, metric


def test_same_seed_same_result_and_another_seed_another_ci() -> None:
    frame = people(3000, unfair=0.05)

    first, again = assess(frame, seed=5).to_json(), assess(frame, seed=5).to_json()
    other = assess(frame, seed=6)

    assert first == again
    assert check(other, "region: demographic_parity_ratio").ci != tuple(
        next(c for c in first["checks"] if c["name"] == "region: demographic_parity_ratio")["ci"])


def test_resamples_where_a_group_draws_no_positives_count_as_the_worst_case() -> None:
    frame = people(400)
    rare = pd.DataFrame({"y_true": [1] + [0] * 39, "y_pred": [1] + [0] * 39, "region": "west", "band": "x"})
    result = assess(pd.concat([frame, rare], ignore_index=True), ("region",),
                    metrics={"equal_opportunity_difference": {"max": 1.0}})

    found = check(result, "region: equal_opportunity_difference")
    assert found.details["undefined_resamples"] > 0  # ~37% of resamples miss west's one positive
    assert found.ci is not None and found.ci[1] == 1.0


# --- decisions ---------------------------------------------------------------------------------------


def test_a_clearly_unfair_model_fails_with_a_reason_in_plain_words() -> None:
    result = assess(people(6000, unfair=0.12), ("region",))

    assert result.status == "fail"
    ratio = check(result, "region: demographic_parity_ratio")
    assert ratio.status == "fail" and ratio.ci is not None and ratio.ci[0] < 0.8
    assert ratio.details["lowest_group"] == "region=south"
    assert ratio.reason.startswith("region: the rate of predicted 'default = yes' for region 'south' is ")
    assert "times that for region '" in ratio.reason
    assert "(95% CI " in ratio.reason and ratio.reason.endswith("policy requires at least 0.8")
    assert result.reason.startswith("region: demographic parity ratio 0.")  # the gate's reason is brief
    assert "'south' vs 'north'" in result.reason and result.reason.endswith("; and 1 more (see the checks)")


def test_a_fair_model_passes_with_enough_rows() -> None:
    result = assess(people(40_000, band_gap=0))

    assert result.status == "pass", result.reason
    assert result.reason.startswith("no disparity beyond the policy across region, band, region & band")
    assert [c.name for c in result.checks if c.name.startswith("region & band")] == [
        "region & band: groups", "region & band: demographic_parity_ratio",
        "region & band: equalized_odds_difference"]


def test_a_fair_model_on_too_few_rows_fails_because_the_bound_is_not_sure() -> None:
    result = assess(people(300), ("region",), metrics={"demographic_parity_ratio": {"min": 0.8}})

    found = check(result, "region: demographic_parity_ratio")
    assert found.status == "fail"
    assert found.statistic is not None and found.statistic >= 0.8
    assert found.reason.endswith("the estimate meets it, but there are too few rows to be sure")


def test_defaults_are_demographic_parity_ratio_and_equalized_odds_difference() -> None:
    result = assess(people(2000), ("region",))

    assert result.details["default_metrics"] is True
    assert result.details["metrics"] == fairness.DEFAULT_METRICS
    assert [c.name for c in result.checks] == ["region: groups", "region: demographic_parity_ratio",
                                               "region: equalized_odds_difference"]
    assert check(result, "region: demographic_parity_ratio").threshold == {"min": 0.8}
    assert check(result, "region: equalized_odds_difference").threshold == {"max": 0.1}


def test_a_bound_with_both_ends_uses_both_ends_of_the_ci() -> None:
    result = assess(people(20_000), ("region",), metrics={"demographic_parity_difference": {"min": 0.05, "max": 1}})

    found = check(result, "region: demographic_parity_difference")
    assert found.status == "fail" and "policy requires at least 0.05 and at most 1" in found.reason


def test_intersection_by_default_with_two_features_and_only_a_warning_when_it_is_too_small() -> None:
    frame = people(300)  # ~50 rows per region x band group, ~100 per region, ~150 per band

    assessed = assess(frame, min_group_size=20)
    too_small = assess(frame, min_group_size=70)
    required = assess(frame, min_group_size=70, intersectional=True)
    off = assess(frame, min_group_size=20, intersectional=False)

    assert assessed.details["intersectional"] == "default"
    assert check(assessed, "region & band: groups").status == "pass"
    assert check(assessed, "region & band: demographic_parity_ratio").statistic is not None
    small = check(too_small, "region & band: groups")
    assert small.status == "warn" and small.reason.endswith("not required by the policy, so this only warns)")
    assert check(too_small, "region: groups").status == "pass"
    assert required.details["intersectional"] == "required"
    assert check(required, "region & band: groups").status == "error"
    assert required.status == "error"
    assert off.details["intersectional"] == "off"
    assert [v["name"] for v in off.details["views"]] == ["region", "band"]
    assert not [c for c in off.checks if c.name.startswith("region & band")]


def test_one_feature_has_no_intersection_and_cannot_require_one() -> None:
    frame = people(500)

    assert [v["name"] for v in assess(frame, ("region",)).details["views"]] == ["region"]
    with pytest.raises(CannotEvaluate) as caught:
        assess(frame, ("region",), intersectional=True)
    result = caught.value.result("fairness")
    assert result.status == "error" and result.n == len(frame)
    assert "intersectional assessment needs at least two sensitive features" in result.reason


def test_result_is_json_safe_with_groups_counts_and_the_table() -> None:
    frame = people(1000, tiny=2)
    frame.loc[0, "band"] = None
    payload = json_safe(assess(frame))

    assert payload["gate"] == "fairness"
    assert payload["n"] == len(frame)
    assert sum(n for g, n in payload["groups"].items() if g.startswith("region=") and "&" not in g) == len(frame)
    assert payload["groups"]["band=(missing)"] == 1  # a missing value is a group, not a dropped row
    region = next(v for v in payload["details"]["views"] if v["name"] == "region")
    assert set(region["groups"][0]) >= {"group", "n", "positives", "negatives", "predicted_positive",
                                        "selection_rate", "true_positive_rate", "false_positive_rate",
                                        "accuracy", "status", "notes"}


# --- bad input: an `error` with a reason, never an exception ------------------------------------------


@pytest.mark.parametrize(("column", "value", "message"), [
    ("y_pred", np.nan, "1 of 600 predictions are NaN or infinite"),
    ("y_pred", np.inf, "1 of 600 predictions are NaN or infinite"),
    ("y_true", -np.inf, "1 of 600 labels are NaN or infinite"),
    ("y_true", np.nan, "1 of 600 labels are NaN or infinite"),
    ("y_true", 2, "the labels must be 0 or 1"),
])
def test_nan_infinite_or_non_binary_predictions_and_labels(column: str, value: float, message: str) -> None:
    frame = people(600).astype({"y_true": float, "y_pred": float})
    frame.loc[17, column] = value

    result = gates.evaluate("fairness", context(frame), {})

    assert result.status == "error"
    assert result.reason == f"cannot assess fairness: {message}"


def test_mismatched_lengths_of_predictions_and_labels() -> None:
    frame = people(600)
    with pytest.raises(CannotEvaluate, match="599 predictions for 600 labels"):
        fairness.make_sample(frame["y_true"], frame["y_pred"][:-1], {"region": frame["region"]})
    with pytest.raises(CannotEvaluate, match="sensitive feature 'region' has 598 values for 600 rows"):
        fairness.make_sample(frame["y_true"], frame["y_pred"], {"region": frame["region"][:-2]})


def test_a_sensitive_feature_with_one_group_only() -> None:
    frame = people(600).assign(region="north")

    result = assess(frame, ("region", "band"))

    assert result.status == "error"
    found = check(result, "region: groups")
    assert found.status == "error"
    assert found.reason.startswith("region: every row is in one group (region 'north'), so there is no other")
    assert not [c for c in result.checks if c.name.startswith("region: ") and c.name != "region: groups"]
    assert check(result, "band: groups").status == "pass"  # the other feature is still assessed
    assert table(result, "region")["region=north"]["n"] == 600


def test_a_group_of_three_rows_is_reported_and_with_one_group_left_the_view_is_an_error() -> None:
    frame = people(600).assign(region="north")
    frame.loc[:2, "region"] = "south"

    result = assess(frame, ("region",))

    assert result.status == "error"
    found = check(result, "region: groups")
    assert found.status == "error"
    assert "only 1 of 2 groups has at least 30 rows" in found.reason
    assert "insufficient data: region 'south' (3 rows)" in found.reason
    assert found.details["insufficient"] == [{"group": "region=south", "n": 3}]
    south = table(result, "region")["region=south"]
    assert (south["n"], south["status"]) == (3, "insufficient data")
    assert found.reason in result.reason


def test_a_group_with_no_positives_has_no_tpr_and_tpr_metrics_are_errors_not_zero() -> None:
    frame = people(900)
    frame.loc[frame["region"] == "east", "y_true"] = 0
    metrics = {"demographic_parity_ratio": {"min": 0.5}, "equalized_odds_difference": {"max": 0.5},
               "equal_opportunity_ratio": {"min": 0.5}}

    result = assess(frame, ("region",), metrics=metrics)

    assert result.status == "error"
    assert check(result, "region: demographic_parity_ratio").status == "pass"
    for name in ("region: equalized_odds_difference", "region: equal_opportunity_ratio"):
        found = check(result, name)
        assert found.status == "error" and found.statistic is None
        assert "true positive rate is undefined for region 'east': no actual 'default = yes' cases" in found.reason
    east = table(result, "region")["region=east"]
    assert east["true_positive_rate"] is None and east["positives"] == 0
    assert "no actual positives: true positive rate undefined" in east["notes"]
    json_safe(result)


def test_a_group_with_no_negatives_has_no_fpr() -> None:
    frame = people(900)
    frame.loc[frame["region"] == "east", "y_true"] = 1

    found = check(assess(frame, ("region",)), "region: equalized_odds_difference")

    assert found.status == "error"
    assert "false positive rate is undefined for region 'east'" in found.reason


def test_nobody_selected_makes_the_ratio_undefined_not_one() -> None:
    frame = people(900).assign(y_pred=0)

    result = assess(frame, ("region",), metrics={"demographic_parity_ratio": {"min": 0.8},
                                                 "demographic_parity_difference": {"max": 0.1}})

    assert check(result, "region: demographic_parity_ratio").status == "error"
    assert "selection rate is 0 in every group, so their ratio is undefined" in result.reason
    assert check(result, "region: demographic_parity_difference").status == "pass"


def test_a_sensitive_column_missing_from_the_predictions() -> None:
    frame = people(600).drop(columns="band")

    result = gates.evaluate("fairness", context(frame), {})

    assert result.status == "error"
    assert result.reason == ("cannot assess fairness: column(s) band not in reports/loans/predictions.parquet: "
                             "run `modelops-ci step evaluate loans` again (are they in the test data?)")


@pytest.mark.parametrize(("params", "message"), [
    ({"task": "regression"}, "the fairness gate needs a classification model, not regression"),
    ({"data": {"target": {"column": "default"}}}, "no sensitive features are declared"),
])
def test_a_pipeline_the_gate_does_not_apply_to(params: dict[str, Any], message: str) -> None:
    result = gates.evaluate("fairness", context(people(100), **params), {})

    assert result.status == "error" and message in result.reason


def test_an_unknown_metric_is_an_error() -> None:
    result = gates.evaluate("fairness", context(people(100)), {"metrics": {"statistical_parity": {"min": 0.8}}})

    assert result.status == "error" and "unknown fairness metric(s) statistical_parity" in result.reason


def context(frame: pd.DataFrame, **params: Any) -> GateContext:
    """A gate context over `frame` as the loans pipeline's predictions (nothing on disk)."""
    base = {"task": "classification", "split": {"seed": 3},
            "data": {"target": {"column": "default", "positive": "yes"},
                     "sensitive": ["region", {"derive": "band", "from": "age", "bins": [0, 40, 120]}]}}
    return GateContext(StepContext(Path("/nonexistent"), "loans", {**base, **params}), {"predictions": frame})


# --- speed --------------------------------------------------------------------------------------------


def test_100k_rows_get_cis_around_each_disparity(capsys: pytest.CaptureFixture[str]) -> None:
    """At scale: 100,000 rows, 3 views x 2 disparities x 1,000 resamples (the time is printed for
    the record; the suite does not judge it)."""
    frame = people(100_000, unfair=0.02)
    data = sample(frame)
    fairness.assess(data, {}, resamples=10)  # imports (fairlearn, sklearn) are not the gate's speed

    started = time.perf_counter()
    result = fairness.assess(data, {}, resamples=1000)
    elapsed = time.perf_counter() - started

    with capsys.disabled():
        print(f"\nfairness gate: 100,000 rows, 3 views x 2 disparities x 1000 resamples: {elapsed:.2f} s")
    ratio = check(result, "region: demographic_parity_ratio")
    assert ratio.ci is not None and ratio.statistic is not None
    assert ratio.ci[0] <= ratio.statistic <= ratio.ci[1] and ratio.ci[1] - ratio.ci[0] < 0.1


# --- a real pipeline -------------------------------------------------------------------------------


def _two_groups(n_each: int, rate_a: float, rate_b: float, seed: int = 11) -> Any:
    rng = np.random.default_rng(seed)
    group = np.repeat(["a", "b"], n_each)
    y_true = rng.integers(0, 2, 2 * n_each)
    rates = np.where(group == "a", rate_a, rate_b)
    y_pred = (rng.random(2 * n_each) < rates).astype(int)
    return fairness.make_sample(y_true, y_pred, {"g": group})


def test_inconclusive_disparity_warns_only_when_the_policy_says_so() -> None:
    sample = _two_groups(150, 0.50, 0.58)  # ratio ~0.86, CI straddles 0.8 at this size
    settings: dict[str, Any] = {"metrics": {"demographic_parity_ratio": {"min": 0.8}}}
    strict = fairness.assess(sample, settings)
    check = next(c for c in strict.checks if c.name.endswith("demographic_parity_ratio"))
    assert check.ci is not None and check.ci[0] < 0.8 <= check.ci[1], check.ci
    assert strict.status == "fail"
    lenient = fairness.assess(sample, {**settings, "inconclusive_warns": True})
    assert lenient.status == "warn"
    assert "flagged for review" in lenient.reason


def test_significant_disparity_fails_even_when_inconclusive_warns() -> None:
    sample = _two_groups(2000, 0.30, 0.60)  # ratio ~0.5, the whole CI below 0.8
    settings = {"metrics": {"demographic_parity_ratio": {"min": 0.8}}, "inconclusive_warns": True}
    result = fairness.assess(sample, settings)
    assert result.status == "fail"


# --- adverse outcomes: denial rates, odds ratios, and the disparity already in the labels ---------------


def _adverse_view(result: GateResult, view: str) -> dict[str, Any]:
    return next(v for v in result.details["adverse"]["views"] if v["name"] == view)


@pytest.mark.parametrize("features", [("region",), ("band",), ("region", "band")])
def test_adverse_rate_disparities_are_fairlearns_on_the_predictions_and_on_the_labels(
        features: tuple[str, ...], shared_run: Callable[..., GateResult]) -> None:
    frame = people(3000, unfair=0.08)
    found = _adverse_view(shared_run(3000, 0.08, 20), " & ".join(features))  # one run holds every view
    groups = frame[list(features)]

    for source, y in (("model", frame["y_pred"]), ("labels", frame["y_true"])):
        figures = found[source]
        # the adverse outcome is the other class: fairlearn's parity on 1 - y; its ratio quoted high/low
        assert figures["adverse_rate_ratio"] == pytest.approx(
            1 / fl.demographic_parity_ratio(frame["y_true"], 1 - y, sensitive_features=groups), abs=1e-12)
        assert figures["adverse_rate_difference"] == pytest.approx(
            fl.demographic_parity_difference(frame["y_true"], 1 - y, sensitive_features=groups), abs=1e-12)
        assert figures["favourable_rate_ratio"] == pytest.approx(
            fl.demographic_parity_ratio(frame["y_true"], y, sensitive_features=groups), abs=1e-12)
        assert figures["favourable_rate_difference"] == pytest.approx(
            fl.demographic_parity_difference(frame["y_true"], y, sensitive_features=groups), abs=1e-12)
    rates = (1 - frame["y_pred"]).groupby([frame[f] for f in features]).mean()
    for row in found["groups"]:
        key = tuple(part.split("=", 1)[1] for part in row["group"].split(" & "))
        assert row["model_adverse_rate"] == pytest.approx(rates.loc[key if len(key) > 1 else key[0]], abs=1e-12)


def test_odds_ratios_and_their_woolf_cis_are_statsmodels() -> None:
    from statsmodels.stats.contingency_tables import Table2x2

    frame = people(2000, unfair=0.1)
    result = assess(frame, features=("region",), resamples=20, confidence=0.9)
    found = _adverse_view(result, "region")
    reference = found["reference_group"].split("=", 1)[1]
    recorded = (1 - frame["y_true"]).groupby(frame["region"]).mean()
    assert reference == recorded.idxmin()  # the group the data itself treats best
    for row in found["groups"]:
        group = row["group"].split("=", 1)[1]
        if group == reference:
            assert "model_odds_ratio" not in row
            continue
        for source, y in (("model", frame["y_pred"]), ("labels", frame["y_true"])):
            mine, ref = y[frame["region"] == group], y[frame["region"] == reference]
            table = Table2x2(np.array([[(mine == 0).sum(), (mine == 1).sum()], [(ref == 0).sum(), (ref == 1).sum()]]))
            assert row[f"{source}_odds_ratio"] == pytest.approx(table.oddsratio, rel=1e-12)
            assert row[f"{source}_odds_ratio_ci"] == pytest.approx(
                list(table.oddsratio_confint(alpha=0.1, method="normal")), rel=1e-12)
    worst = max((r for r in found["groups"] if "model_odds_ratio" in r), key=lambda r: r["model_odds_ratio"])
    assert found["model"]["odds_ratio"] == worst["model_odds_ratio"]
    assert found["model"]["odds_ratio_group"] == worst["group"]
    assert result.details["adverse"]["odds_ratio_ci"] == "woolf"


def test_an_empty_cell_adds_haldane_anscombes_half_to_every_cell() -> None:
    from statsmodels.stats.contingency_tables import Table2x2

    ratio, low, high = fairness.odds_ratio(0, 40, 12, 38, 0.95)
    table = Table2x2(np.array([[0.5, 40.5], [12.5, 38.5]]))
    assert (ratio, low, high) == pytest.approx((table.oddsratio, *table.oddsratio_confint(method="normal")), rel=1e-12)


def test_the_labels_disparity_shows_whether_the_model_widens_it() -> None:
    # the labels treat south like the others; the model denies south more often
    found = _adverse_view(assess(people(4000, unfair=0.15), features=("region",), resamples=20), "region")
    assert found["model"]["adverse_rate_difference"] > found["labels"]["adverse_rate_difference"] + 0.05
    assert found["model"]["highest_adverse_group"] == "region=south"


def test_small_groups_are_left_out_of_the_adverse_figures_and_a_view_needs_two_groups() -> None:
    result = assess(people(600, tiny=5), min_group_size=30, resamples=20)
    region = _adverse_view(result, "region")
    assert "region=island" not in [row["group"] for row in region["groups"]]
    only_one = fairness.assess(_two_groups(100, 0.5, 0.5), {"min_group_size": 150}, resamples=20)
    assert only_one.details["adverse"]["views"] == []


def test_the_adverse_outcome_is_named_from_the_target() -> None:
    plain = gates.evaluate("fairness", context(people(400)), {})
    assert plain.details["adverse"]["outcome"] == "not default = yes"
    favourable = context(people(400), data={"target": {"column": "default", "positive": "yes", "favorable": "no"},
                                            "sensitive": ["region"]})
    flipped = gates.evaluate("fairness", favourable, {})
    assert flipped.details["positive"] == "default = no"
    assert flipped.details["adverse"]["outcome"] == "default = yes"
