"""Monitoring the server's real prediction log (monitor/logged.py, monitor/watch.py): records
flattened to rows, windows per model version, a gap kept as an empty window, and bad input named
while the other versions' windows are still assessed."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops_ci.errors import UserError
from modelops_ci.gates import profile
from modelops_ci.gates.drift import univariate
from modelops_ci.monitor import logged
from modelops_ci.monitor.assess import Settings
from modelops_ci.monitor.watch import Reference, watch
from modelops_ci.monitor.windows import parse
from modelops_ci.serve import predlog
from modelops_ci.serve.records import Record

NUMERIC = ["income", "debt"]
CATEGORICAL = ["region"]
HOUR = 3600.0


def features(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, object]]:
    return [{"income": float(rng.normal(50 + 10 * shift, 10)), "debt": float(rng.gamma(2.0, 5.0)),
             "region": str(rng.choice(["north", "south"]))} for _ in range(n)]


def record(model: str, version: str, at: float, rows: list[dict[str, object]], number: int) -> Record:
    scores = [round(0.1 + 0.001 * (number % 100), 4)] * len(rows)
    return Record(f"r-{model}-{number}", model, version, "champion", True, at, 5.0, 200, None, json.dumps(rows),
                  json.dumps([0] * len(rows)), json.dumps(scores))


@pytest.fixture(scope="module")
def log_rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A real log: credit v1 in hours 10, 11 and 13 (13 shifted), two rows a request; a version
    nobody deploys; one refusal (no version) that is not a scored row."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("log") / "production.sqlite"
    records = []
    for hour, shift in ((10, 0.0), (11, 0.0), (13, 1.0)):
        records += [record("credit", "v1", hour * HOUR + n, features(rng, 2, shift), hour * 1000 + n)
                    for n in range(400)]
    records += [record("ghost", "v9", 10 * HOUR + n, features(rng, 1), n) for n in range(5)]
    records.append(Record("bad-1", "credit", None, "none", True, 10 * HOUR, 0.1, 422, "rows[0]: ...", "", "", ""))
    with predlog.PredictionLog.open(path) as log:
        log.append(records).result()
    return logged.from_records(predlog.read(path), [*NUMERIC, *CATEGORICAL])


@pytest.fixture(scope="module")
def references() -> dict[tuple[str, str], Reference]:
    rng = np.random.default_rng(1)
    training = pd.DataFrame(features(rng, 5000))
    return {("credit", "v1"): Reference(profile.build(training, NUMERIC, CATEGORICAL, grid=univariate.RAW_GRID))}


def test_records_become_one_row_per_scored_row(log_rows: pd.DataFrame) -> None:
    credit = log_rows[log_rows["model"] == "credit"]
    assert len(credit) == 3 * 400 * 2  # the refusal scored no row
    assert set(credit["row"]) == {0, 1}
    first = credit.iloc[0]
    assert (first["version"], first["role"], first["prediction"]) == ("v1", "champion", 0)
    assert isinstance(first["income"], float) and first["region"] in {"north", "south"}
    assert first["score"] == pytest.approx(0.1)


def test_each_hour_is_assessed_the_gap_is_an_empty_window_and_the_shift_is_found(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    found = watch(log_rows, references, parse("1h"), Settings(min_samples=200, max_drifted_share=0.0))
    credit = [(a.start / HOUR, a.rows, a.status) for a in found.assessments]
    assert credit == [(10, 800, "pass"), (11, 800, "pass"), (12, 0, "inconclusive"), (13, 800, "drift")]
    assert "income" in found.assessments[3].drifted  # the shifted feature (BH may take a borderline one along)
    assert found.problems == ["ghost v9 is in the log but no deployment names it (watched: credit v1): its rows "
                              "are not assessed"]


def test_a_feature_of_the_wrong_type_refuses_that_window_only(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    rows = log_rows.copy()
    rows["income"] = rows["income"].astype(object)
    rows.loc[rows["time"] < 11 * HOUR, "income"] = "lots"
    found = watch(rows[rows["model"] == "credit"], references, parse("1h"), Settings(min_samples=200))
    assert [a.start / HOUR for a in found.assessments] == [11, 12, 13]
    assert found.problems == ["credit v1: the window from 36000: income holds non-numeric values (dtype object): "
                              "not assessed (the model's card declares it numeric)"]


def test_rows_without_a_feature_of_the_model_are_named_not_assessed(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    found = watch(log_rows.drop(columns=["debt"]), references, parse("1h"))
    assert found.assessments == []
    assert "credit v1: the logged rows have no debt: its windows are not assessed" in found.problems


def test_a_file_of_logged_rows_needs_model_version_and_time(tmp_path: Path, log_rows: pd.DataFrame) -> None:
    good = tmp_path / "rows.parquet"
    log_rows.to_parquet(good)
    assert len(logged.from_file(good)) == len(log_rows)
    no_version = tmp_path / "rows.csv"
    log_rows.drop(columns=["version"]).to_csv(no_version, index=False)
    with pytest.raises(UserError, match=re.escape(f"{no_version}: the logged rows have no version column")):
        logged.from_file(no_version)
    bad_time = tmp_path / "times.csv"
    log_rows.head(3).assign(time=["1", "yesterday", "3"]).to_csv(bad_time, index=False)
    with pytest.raises(UserError, match=re.escape(f"{bad_time}: row 2: time 'yesterday' is not unix seconds")):
        logged.from_file(bad_time)
    with pytest.raises(UserError, match=re.escape("from a .parquet or .csv file, not .json")):
        logged.from_file(tmp_path / "rows.json")


def test_a_calibrated_classifier_gets_estimates_then_realised_metrics_once_labels_arrive(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    from modelops_ci.monitor.estimate import calibrate

    rng = np.random.default_rng(5)
    holdout = rng.random(2000)
    calibrated = {key: replace(ref, calibration=calibrate(holdout, (rng.random(2000) < holdout).astype(float)),
                               positive="bad") for key, ref in references.items()}
    rows = log_rows[log_rows["model"] == "credit"].copy()
    rows["score"] = rng.random(len(rows))
    in_hour_13 = rows["time"] >= 13 * HOUR
    rows["label"] = None
    rows.loc[in_hour_13, "label"] = np.where(rng.random(int(in_hour_13.sum())) < rows.loc[in_hour_13, "score"],
                                             "bad", "good")
    found = watch(rows, calibrated, parse("1h"), Settings(min_samples=200))
    kinds = {a.start / HOUR: sorted((e.metric, e.realised) for e in a.performance) for a in found.assessments}
    estimates = [("accuracy", False), ("roc_auc", False)]
    assert kinds == {10: estimates, 11: estimates, 12: [], 13: sorted([*estimates, ("accuracy", True),
                                                                       ("roc_auc", True)])}
    realised_accuracy = next(e for e in found.assessments[3].performance if e.realised and e.metric == "accuracy")
    assert realised_accuracy.n == 800 and realised_accuracy.low <= realised_accuracy.value <= realised_accuracy.high


def test_a_day_is_assessed_from_its_windows_profiles_alone(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    from modelops_ci.monitor.watch import by_day

    found = watch(log_rows, references, parse("1h"), Settings(min_samples=200, max_drifted_share=0.0))
    [day] = by_day(found.profiles, references, Settings(min_samples=200, max_drifted_share=0.0))
    assert (day.start, day.end, day.rows) == (10 * HOUR, 14 * HOUR, 3 * 800)
    assert day.status == "drift" and "income" in day.drifted  # the shifted hour shows in the whole day


def test_a_regressor_gets_its_realised_errors_once_labels_arrive(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    rng = np.random.default_rng(8)
    regression = {key: replace(ref, task="regression") for key, ref in references.items()}
    rows = log_rows[log_rows["model"] == "credit"].copy()
    rows["prediction"] = rng.normal(100, 10, len(rows))
    in_hour_13 = (rows["time"] >= 13 * HOUR).to_numpy()
    rows["label"] = np.where(in_hour_13, rows["prediction"] + rng.normal(0, 5, len(rows)), np.nan)
    found = watch(rows, regression, parse("1h"), Settings(min_samples=200))
    assert [a.performance for a in found.assessments[:3]] == [(), (), ()]
    mae, rmse = found.assessments[3].performance
    errors = (rows.loc[in_hour_13, "label"] - rows.loc[in_hour_13, "prediction"]).to_numpy()
    assert (mae.metric, rmse.metric, mae.realised, mae.n) == ("mae", "rmse", True, 800)
    assert mae.value == pytest.approx(np.abs(errors).mean())
    assert rmse.value == pytest.approx(np.sqrt((errors**2).mean()))
    assert mae.low < mae.value < mae.high


def test_the_classifier_test_runs_on_each_windows_rows_when_the_policy_asks(
        log_rows: pd.DataFrame, references: dict[tuple[str, str], Reference]) -> None:
    credit = log_rows[log_rows["model"] == "credit"]
    plain = watch(credit, references, parse("1h"), Settings(min_samples=200))
    assert all(c.name != "multivariate" for a in plain.assessments for c in a.checks)
    asked = watch(credit, references, parse("1h"), Settings(min_samples=200, classifier_test=True))
    tests = {a.start / HOUR: next((c for c in a.checks if c.name == "multivariate"), None) for a in asked.assessments}
    assert tests[12] is None  # the empty hour is not judged at all
    assert (tests[10].status, tests[11].status, tests[13].status) == ("pass", "pass", "fail")  # type: ignore[union-attr]
    assert asked.assessments[3].status == "drift" and "a classifier tells current rows" in asked.assessments[3].reason
