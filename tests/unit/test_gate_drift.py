"""The drift gate: statistics that equal scipy's, FDR calibration on data with no drift, power on a
small shift, a stored profile that agrees with the raw data, and bad input reported (an `error`
result from `gates.evaluate`; `CannotEvaluate` from the pure `assess`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelops_ci import gates
from modelops_ci.gates import drift, profile
from modelops_ci.gates.context import GateContext
from modelops_ci.gates.drift import inputs, multivariate, univariate
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult
from modelops_ci.steps.context import StepContext

ALPHA = 0.05
QUIET = {"multivariate": False, "prediction": False}  # per-feature tests only (fast)


def columns(rng: np.random.Generator, rows: int, numeric: int = 3, categorical: int = 1,
            shift: float = 0.0) -> dict[str, np.ndarray]:
    drawn: dict[str, np.ndarray] = {f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, rows) for i in range(numeric)}
    drawn.update({f"c{i}": rng.choice(["a", "b", "c", "d"], rows) for i in range(categorical)})
    return drawn


def table(rng: np.random.Generator, rows: int, numeric: int = 3, categorical: int = 1,
          shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(columns(rng, rows, numeric, categorical, shift))


def kinds(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    return [c for c in frame if c.startswith("x")], [c for c in frame if c.startswith("c")]


def gate(reference: pd.DataFrame, current: pd.DataFrame, grid: int | None = univariate.RAW_GRID,
         **settings: Any) -> GateResult:
    numeric, categorical = kinds(reference)
    built = profile.build(reference, numeric, categorical, grid=grid, sample_rows=multivariate.CLASSIFIER_ROWS)
    return drift.assess(built, current, {**QUIET, **settings})


def check(result: GateResult, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


# -- the statistics equal scipy's ----------------------------------------------------------------


@pytest.mark.parametrize("rows", [(300, 200), (30_000, 20_000)])  # scipy's exact p, then asymptotic
def test_ks_and_wasserstein_equal_scipy(rows: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(0, 1, rows[0]), 2)  # ties on purpose
    b = np.round(rng.normal(0.03, 1.1, rows[1]), 2)
    summary = profile.numeric_summary(a, univariate.RAW_GRID)
    statistic, p_value, distance = univariate.ks_test(summary, np.sort(b))
    expected = stats.ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    # exact: scipy's own; asymptotic: Stephens-corrected limit, within 2% of scipy's kstwo
    assert p_value == pytest.approx(expected.pvalue, rel=1e-12 if max(rows) <= 10_000 else 0.02)
    assert distance == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_chi_squared_equals_scipy_and_keeps_unseen_categories() -> None:
    rng = np.random.default_rng(2)
    reference = pd.Series(rng.choice(["a", "b", "c"], 500, p=[0.5, 0.3, 0.2]))
    current = pd.Series(rng.choice(["a", "b", "c", "new"], 400, p=[0.45, 0.3, 0.2, 0.05]))
    result = univariate.categorical_drift("c", profile.categorical_summary(reference),
                                          profile.categorical_summary(current))
    crosstab = pd.crosstab(np.r_[np.zeros(500), np.ones(400)], np.r_[reference, current])
    expected = stats.chi2_contingency(crosstab.to_numpy())
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.details["p_distribution"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.details["unseen"] == {"new": int((current == "new").sum())}
    shares = crosstab.to_numpy() / crosstab.to_numpy().sum(axis=1, keepdims=True)
    from scipy.spatial.distance import jensenshannon

    assert result.details["js"] == pytest.approx(jensenshannon(shares[0], shares[1], base=2))


def test_unseen_categories_are_drift_and_named() -> None:
    rng = np.random.default_rng(3)
    reference = table(rng, 5000)
    current = table(rng, 5000)
    current.loc[:99, "c0"] = "zz"  # 2% of rows in a category the reference never had
    result = gate(reference, current, max_drifted_share=0.0)
    feature = check(result, "c0")
    assert feature.status == "warn" and feature.details["drifted"]
    assert "'zz'" in feature.reason and "2.0% of current rows" in feature.reason
    assert result.status == "fail" and "(c0)" in result.reason


def test_numeric_labels_of_one_category_match_across_types() -> None:
    """1 in an int column and 1.0 in a float column (NaN made it float) are the same category."""
    reference = pd.Series([1, 2, 3] * 50)
    current = pd.Series([1.0, 2.0, np.nan] * 50)
    summary = profile.categorical_summary(current)
    assert list(summary.categories) == ["1", "2"] and summary.missing == 50
    assert list(profile.categorical_summary(reference).categories) == ["1", "2", "3"]


def test_corrections() -> None:
    p = np.array([0.01, 0.02, 0.5])
    assert list(univariate.adjust(p, "none")) == list(p)
    assert list(univariate.adjust(p, "bonferroni")) == pytest.approx([0.03, 0.06, 1.0])
    assert list(univariate.adjust(p, "fdr_bh")) == pytest.approx(list(stats.false_discovery_control(p)))


# -- decisions ------------------------------------------------------------------------------------


def side_by_side(datasets: int, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`datasets` seeded pairs of tables (15 numeric, 5 categorical features; reference and current
    drawn from one distribution) as one wide pair: dataset k's columns are prefixed `dk_`. Each
    feature is tested on its own column, so one profile and one comparison test them all."""
    references: dict[str, np.ndarray] = {}
    currents: dict[str, np.ndarray] = {}
    for seed in range(datasets):  # `table`'s draws, in its order, into one frame a side (not 400 frames joined)
        rng = np.random.default_rng(seed)
        for side in (references, currents):
            side.update({f"d{seed}_{name}": values for name, values in columns(rng, rows, 15, 5).items()})
    return pd.DataFrame(references), pd.DataFrame(currents)


def test_fdr_calibration_on_200_datasets_without_drift() -> None:
    """200 seeded datasets, 20 features (15 numeric, 5 categorical), reference and current drawn
    from one distribution, under the strictest share rule (dataset drift when any feature drifts).
    Benjamini-Hochberg holds the rate of datasets flagged to alpha under the global null; without
    the correction the same data flags far more (20 tests at alpha each)."""
    reference, current = side_by_side(200, 200)
    numeric = [c for c in reference if "_x" in c]
    categorical = [c for c in reference if "_c" in c]
    tested = univariate.compare(profile.build(reference, numeric, categorical, grid=None), current)
    per_dataset: dict[str, list[Check]] = {}
    for feature in tested:
        per_dataset.setdefault(feature.name.split("_")[0], []).append(feature)
    assert len(per_dataset) == 200 and {len(features) for features in per_dataset.values()} == {20}
    flagged = {"fdr_bh": 0, "none": 0}
    for features in per_dataset.values():
        for correction in flagged:  # the same p-values, decided under each correction
            flagged[correction] += univariate.decide(features, ALPHA, correction, max_share=0.0).status == "fail"
    assert flagged["fdr_bh"] <= ALPHA * 200
    assert flagged["none"] > 4 * ALPHA * 200


def test_classifier_test_calibration_without_drift() -> None:
    """40 datasets with no drift: the classifier test rejects about alpha of them (2 expected;
    P(Binomial(40, 0.05) >= 7) = 0.003)."""
    rejected = 0
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        result = gate(table(rng, 120, 5, 2), table(rng, 120, 5, 2), multivariate=True)
        rejected += check(result, "multivariate").status == "fail"
    assert rejected <= 6


def test_detects_a_tenth_of_an_sd_shift_in_one_feature_at_100k_rows() -> None:
    rng = np.random.default_rng(4)
    reference, current = table(rng, 100_000, 8, 2), table(rng, 100_000, 8, 2, shift=0.1)
    result = gate(reference, current, multivariate=True, max_drifted_share=0.0)
    assert result.details["drifted"] == ["x0"]
    assert check(result, "x0").details["p_adjusted"] < 1e-10
    assert check(result, "multivariate").status == "fail"  # the classifier sees it too
    assert result.status == "fail"
    assert result.reason.startswith("1 of 10 features changed significantly (x0); the policy allows at most 0%")


def test_share_rule_and_reason() -> None:
    rng = np.random.default_rng(5)
    reference = table(rng, 3000, 5, 1)
    current = table(rng, 3000, 5, 1)
    for name in ("x1", "x2"):
        current[name] += 0.5
    passing = gate(reference, current, max_drifted_share=0.5)
    assert passing.status == "warn"  # drifted features, within the policy
    assert passing.reason.startswith("2 of 6 features changed significantly (x1, x2); the policy allows at most 50%")
    failing = gate(reference, current, max_drifted_share=0.3)
    assert failing.status == "fail"
    assert failing.reason == "2 of 6 features changed significantly (x1, x2); the policy allows at most 30%"
    dataset = check(failing, "dataset")
    assert dataset.statistic == pytest.approx(2 / 6) and dataset.threshold == {"max_drifted_share": 0.3}
    feature = check(failing, "x1")
    assert {"p_adjusted", "wasserstein_sd", "psi", "missing_p", "n_reference"} <= set(feature.details)
    assert feature.p_value is not None and feature.n == 3000
    assert feature.details["wasserstein_sd"] == pytest.approx(0.5, abs=0.05)


def test_no_drift_passes() -> None:
    rng = np.random.default_rng(6)
    result = gate(table(rng, 2000), table(rng, 2000), multivariate=True)
    assert result.status == "pass", result.reason
    assert result.reason.startswith("none of 4 features changed significantly")
    assert "cannot tell current rows from reference rows" in result.reason
    json.dumps(result.to_json())  # numpy values are cleaned for JSON


def test_prediction_drift_compares_held_out_scores_with_the_batch() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    train, test = table(rng, 4000, 3, 0), table(rng, 4000, 3, 0)
    same, shifted = table(rng, 4000, 3, 0), table(rng, 4000, 3, 0, shift=0.4)
    y = (train["x0"] + rng.normal(0, 1, 4000) > 0).astype(int)
    model = LogisticRegression().fit(train, y)
    predictor = multivariate.Predictor(model, ["x0", "x1", "x2"], "classification", model.predict_proba(test)[:, 1])
    built = profile.build(train, ["x0", "x1", "x2"], [], sample_rows=multivariate.CLASSIFIER_ROWS)
    quiet = drift.assess(built, same, {"multivariate": False}, predictor=predictor)
    moved = drift.assess(built, shifted, {"multivariate": False}, predictor=predictor)
    assert check(quiet, "prediction").status == "pass"
    assert check(moved, "prediction").status == "warn"
    assert "the model's scores shifted" in check(moved, "prediction").reason
    off = drift.assess(built, same, {"multivariate": False, "prediction": False}, predictor=predictor)
    assert "prediction" in off.details["skipped"]
    required = drift.assess(built, same, {"multivariate": False, "prediction": True})
    assert required.status == "error" and "prediction drift cannot be tested: no model" in required.reason
    broken = drift.assess(built, same, {"multivariate": False}, predictor=multivariate.Unavailable("bad sha256", True))
    assert broken.status == "error" and "bad sha256" in broken.reason


# -- a stored profile agrees with the raw data ----------------------------------------------------


def test_profile_agrees_with_raw_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    reference = table(rng, 50_000, 6, 2)
    current = table(rng, 30_000, 6, 2)
    current["x1"] += 0.05
    current["x2"] = current["x2"] * 1.1
    current.loc[:2000, "x3"] = np.nan
    current.loc[:500, "c1"] = "e"
    numeric, categorical = kinds(reference)
    path = tmp_path / "reference.npz"
    profile.save(profile.build(reference, numeric, categorical), path)
    stored = profile.load(path)
    assert path.stat().st_size < 1_000_000
    raw = gate(reference, current, multivariate=True)
    kept = drift.assess(stored, current, {**QUIET, "multivariate": True})
    assert set(raw.details["drifted"]) == set(kept.details["drifted"]) == {"c1", "x1", "x2", "x3"}
    for name in [*numeric, *categorical]:
        a, b = check(raw, name), check(kept, name)
        resolution = stored.numeric[name].resolution if name in numeric else 0.0
        assert resolution < 1.5 / profile.GRID
        assert abs(a.statistic - b.statistic) <= resolution + 1e-12, name
        p_raw, p_kept = (max(c.details["p_adjusted"], 1e-300) for c in (a, b))
        assert np.log10(p_kept) == pytest.approx(np.log10(p_raw), abs=0.5), name
        for effect in ("psi", "wasserstein_sd", "js"):
            if effect in a.details:
                assert b.details[effect] == pytest.approx(a.details[effect], rel=0.05, abs=2e-3), (name, effect)
    assert check(raw, "multivariate").status == check(kept, "multivariate").status


def test_small_profile_is_exact(tmp_path: Path) -> None:
    """Up to `GRID` distinct values a profile keeps every one: the same numbers as the raw data."""
    rng = np.random.default_rng(9)
    reference, current = table(rng, 1500), table(rng, 1200, shift=0.2)
    numeric, categorical = kinds(reference)
    path = tmp_path / "p.npz"
    profile.save(profile.build(reference, numeric, categorical), path)
    kept = drift.assess(profile.load(path), current, QUIET)
    raw = gate(reference, current)
    for a, b in zip(raw.checks, kept.checks, strict=True):
        assert (a.name, a.status, a.statistic, a.p_value) == (b.name, b.status, b.statistic, b.p_value)


def test_profile_file_is_versioned_and_not_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    frame = table(rng, 300)
    frame.loc[3, "c0"] = None
    path = tmp_path / "p.npz"
    profile.save(profile.build(frame, ["x0", "x1", "x2"], ["c0"]), path)
    loaded = profile.load(path)
    assert loaded.rows == 300 and loaded.categorical["c0"].missing == 1
    assert loaded.sample["c0"].isna().sum() == 1 and len(loaded.sample) == 300
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    header = json.loads(str(arrays["header"]))
    header["version"] = 99
    arrays["header"] = np.asarray(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(CannotEvaluate, match=r"version 99.*rebuild"):
        profile.load(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(CannotEvaluate, match="not a readable drift profile"):
        profile.load(path)


# -- bad input: status `error` with a clear reason (CannotEvaluate when the data cannot be compared)


def test_infinite_values_are_an_error_naming_the_feature() -> None:
    rng = np.random.default_rng(11)
    reference, current = table(rng, 500), table(rng, 500)
    current.loc[[3, 7], "x1"] = [np.inf, -np.inf]
    result = gate(reference, current)
    assert result.status == "error"
    assert "x1 has infinite values (2 in the current data)" in result.reason
    assert check(result, "x0").status == "pass"  # the other features are still reported


def test_nan_counts_as_missing_not_as_an_error() -> None:
    rng = np.random.default_rng(12)
    reference, current = table(rng, 2000), table(rng, 2000)
    current.loc[:299, "x2"] = np.nan  # 15% missing, none in the reference
    result = gate(reference, current)
    feature = check(result, "x2")
    assert result.status == "warn" and feature.details["drifted"]
    assert feature.details["missing_current"] == pytest.approx(0.15)
    assert "missing 0.0% → 15.0%" in feature.reason


def test_constant_columns() -> None:
    same = gate(pd.DataFrame({"x0": np.ones(100), "c0": ["a"] * 100}),
                pd.DataFrame({"x0": np.ones(80), "c0": ["a"] * 80}), multivariate=True)
    assert same.status == "pass", same.reason
    assert check(same, "x0").statistic == 0 and check(same, "x0").details["psi"] == 0
    assert check(same, "c0").details["js"] == 0
    moved = gate(pd.DataFrame({"x0": np.ones(100), "c0": ["a"] * 100}),
                 pd.DataFrame({"x0": np.full(80, 2.0), "c0": ["b"] * 80}))
    for name in ("x0", "c0"):
        feature = check(moved, name)
        assert feature.details["drifted"]
        assert all(np.isfinite(v) for k, v in feature.details.items() if k in ("psi", "js", "wasserstein_sd"))
    pooled = np.std(np.r_[np.ones(100), np.full(80, 2.0)])  # the reference's SD is 0
    assert check(moved, "x0").details["wasserstein_sd"] == pytest.approx(1.0 / pooled)


def test_empty_current_batch() -> None:
    rng = np.random.default_rng(13)
    reference = table(rng, 100)
    with pytest.raises(CannotEvaluate) as caught:
        gate(reference, reference.iloc[:0])
    assert caught.value.reason == "the current data has no rows; at least 5 are needed to test drift"
    assert caught.value.result("drift").status == "error"


def test_columns_missing_from_the_current_data_are_named() -> None:
    rng = np.random.default_rng(14)
    reference = table(rng, 100)
    with pytest.raises(CannotEvaluate) as caught:
        gate(reference, reference.drop(columns=["x1", "c0"]))
    assert caught.value.reason == "columns missing from the current data: x1, c0 (the reference has them)"


def test_text_in_a_numeric_feature() -> None:
    rng = np.random.default_rng(15)
    reference, current = table(rng, 100), table(rng, 100)
    current["x0"] = "n/a"
    result = gate(reference, current)
    assert result.status == "error"
    assert "x0 is numeric in the reference but holds non-numeric values" in result.reason


def test_classifier_test_required_on_too_few_rows() -> None:
    rng = np.random.default_rng(16)
    reference, current = table(rng, 100), table(rng, 20)
    assert "multivariate" in gate(reference, current, multivariate=None).details["skipped"]
    required = gate(reference, current, multivariate=True)
    assert required.status == "error" and "fewer than 50 rows on a side" in required.reason


# -- through a pipeline's files ------------------------------------------------------------------


def pipeline(tmp_path: Path, drift_spec: dict[str, Any], rows: int = 400) -> GateContext:
    rng = np.random.default_rng(17)
    for split in ("train", "test"):
        folder = tmp_path / "data" / "shop"
        folder.mkdir(parents=True, exist_ok=True)
        frame = table(rng, rows)
        frame["y"] = rng.integers(0, 2, rows)
        frame.to_parquet(folder / f"{split}.parquet")
    params = {"task": "classification", "split": {"seed": 3}, "drift": drift_spec,
              "data": {"target": {"column": "y"}, "features": {"numeric": ["x0", "x1", "x2"], "categorical": ["c0"]}},
              "gates": {"drift": {"alpha": 0.05, "correction": "fdr_bh", "max_drifted_share": 0.3}}}
    return GateContext(StepContext(tmp_path, "shop", params))


def test_gate_step_writes_its_report(tmp_path: Path) -> None:
    from modelops_ci.steps.gate import run_gate

    ctx = pipeline(tmp_path, {"reference": "train"})
    assert run_gate(ctx.step, "drift") == {"gate": "drift", "status": "pass"}
    report = json.loads((tmp_path / "reports/shop/gates/drift.json").read_text())
    assert [c["name"] for c in report["checks"]] == ["x0", "x1", "x2", "c0", "dataset", "multivariate"]
    assert report["details"]["reference"] == "data/shop/train.parquet"
    assert report["details"]["skipped"]["prediction"].startswith("the current data is the test split")


def test_gate_reads_a_stored_profile_and_a_new_batch(tmp_path: Path) -> None:
    ctx = pipeline(tmp_path, {"reference": "train"})
    built, _ = inputs.reference_profile(ctx, grid=profile.GRID)
    profile.save(built, tmp_path / "monitoring" / "reference.npz")
    batch = table(np.random.default_rng(18), 300, shift=1.0)
    batch.to_csv(tmp_path / "monitoring" / "batch.csv", index=False)
    ctx = pipeline(tmp_path, {"reference": "monitoring/reference.npz", "current": "monitoring/batch.csv"})
    result = drift.evaluate(ctx, {"prediction": False})
    assert result.details["reference"] == "monitoring/reference.npz"
    assert result.details["current"] == "monitoring/batch.csv"
    assert result.details["drifted"] == ["x0"]


@pytest.mark.parametrize(("spec", "reason"), [
    ({"reference": "train", "current": "monitoring/none.parquet"},
     "drift.current: monitoring/none.parquet does not exist"),
    ({"reference": "monitoring/none.npz"}, "drift.reference: monitoring/none.npz does not exist"),
    ({"reference": "train", "current": "data/shop/notes.txt"}, "drift.current: data/shop/notes.txt: use a .parquet"),
    ({"reference": "data/shop/broken.npz"}, "not a readable drift profile"),
])
def test_unreadable_inputs_are_errors(tmp_path: Path, spec: dict[str, Any], reason: str) -> None:
    ctx = pipeline(tmp_path, spec)
    (tmp_path / "data/shop/notes.txt").write_text("hello")
    (tmp_path / "data/shop/broken.npz").write_bytes(b"PK junk")
    result = gates.evaluate("drift", ctx, {})
    assert result.status == "error"
    assert reason in result.reason


def test_a_univariate_forecast_compares_its_series(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "sales"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(19)
    pd.DataFrame({"t": range(80), "y": rng.normal(10, 1, 80)}).to_parquet(folder / "train.parquet")
    pd.DataFrame({"t": range(80, 88), "y": rng.normal(10, 1, 8)}).to_parquet(folder / "test.parquet")
    params = {"task": "forecast", "drift": {"reference": "train"}, "data": {"target": {"column": "y"}, "time": "t"}}
    result = drift.evaluate(GateContext(StepContext(tmp_path, "sales", params)), {})
    assert [c.name for c in result.checks] == ["y", "dataset"]
    assert result.details["skipped"]["multivariate"] == "fewer than 50 rows on a side"
    assert result.status == "pass", result.reason


def test_gate_scores_a_new_batch_with_the_pipeline_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelops_ci.ml import model_store

    ctx = pipeline(tmp_path, {"reference": "train", "current": "monitoring/batch.parquet"})
    layout = ctx.step.layout
    train, test = ctx.frame("train"), ctx.frame("test")
    inputs = ["x0", "x1", "x2"]
    model = LogisticRegression().fit(train[inputs], train["x0"] > 0)
    model_store.save(model, tmp_path / layout.model, tmp_path / layout.model_card,
                     {"numeric": inputs, "categorical": []})
    (tmp_path / layout.reports).mkdir(parents=True)
    pd.DataFrame({"y_score": model.predict_proba(test[inputs])[:, 1]}).to_parquet(tmp_path / layout.predictions)
    (tmp_path / "monitoring").mkdir()
    table(np.random.default_rng(20), 400, shift=0.8).to_parquet(tmp_path / "monitoring/batch.parquet")
    result = drift.evaluate(ctx, {"multivariate": False})
    assert check(result, "prediction").status == "warn", check(result, "prediction").reason
    (tmp_path / layout.model).write_bytes(b"tampered")
    tampered = drift.evaluate(pipeline(tmp_path, {"reference": "train", "current": "monitoring/batch.parquet"}), {})
    assert tampered.status == "error" and "sha256" in tampered.reason
