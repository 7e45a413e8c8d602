"""The roll-out analysis on synthetic prediction logs: records built here the way the server writes
them (records.COLUMNS + seq + label), the intervals judged, and the decision they lead to."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops_ci.gates import profile as profiles
from modelops_ci.rollout.analysis import Analysis, analyse
from modelops_ci.rollout.decision import decide
from modelops_ci.rollout.metrics import MetricResult
from modelops_ci.serve.records import COLUMNS
from modelops_ci.spec.deployment import Analysis as Settings
from modelops_ci.spec.deployment import ModelDeployment, Step

SINCE = 1_800_000_000.0
INTERVAL = 300.0
CARD = {"task": "classification", "numeric": ["income", "debt"], "categorical": ["region"], "positive": "yes"}
METRICS: dict[str, dict[str, Any]] = {
    "error_rate": {"max": 0.02}, "latency_p99_ms": {"max": 50}, "agreement": {"min": 0.9},
    "prediction_drift": {"alpha": 0.01}, "input_drift": {"alpha": 0.01},
    "performance": {"max_drop": 0.15, "min_labels": 100},  # what ~300 labels an interval can show
}


def _rows(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(50 + shift, 15, n).round(1), "debt": rng.normal(20, 8, n).round(1),
                         "region": rng.choice(["north", "south", "east"], n)})


def _records(n: int, *, version: str = "v1.1.0", role: str = "challenger", seed: int = 1, intervals: float = 3,
             start: float = SINCE, shift: float = 0.0, lean: float = 0.0, errors: float = 0.0,
             client_errors: float = 0.0, flip: float = 0.0, labels: bool = False, ids: list[str] | None = None,
             scores: bool = True) -> pd.DataFrame:
    """`n` one-row requests spread over `intervals` intervals from `start`: inputs shifted by `shift`,
    scores leaning by `lean`, a share of 5xx (`errors`) and 4xx (`client_errors`), a share of
    predictions flipped (`flip`), true labels (drawn from the scores before `lean`) when `labels`."""
    rng = np.random.default_rng(seed)
    rows = _rows(n, seed + 1000, shift)
    risk = 0.08 * rows["debt"] - 0.05 * rows["income"] + 1.0
    truth = np.where(rng.random(n) < 1 / (1 + np.exp(-risk)), "yes", "no")
    score = 1 / (1 + np.exp(-(risk + lean)))
    predicted = np.where(score > 0.5, "yes", "no")
    flipped = rng.random(n) < flip
    predicted = np.where(flipped, np.where(predicted == "yes", "no", "yes"), predicted)
    status = np.where(rng.random(n) < errors, 500, 200)
    status = np.where((status == 200) & (rng.random(n) < client_errors), 422, status)
    ok = status == 200
    features = [json.dumps([row]) for row in rows.to_dict("records")]
    return pd.DataFrame({
        "request_id": ids if ids is not None else [f"{role}-{seed}-{i}" for i in range(n)],
        "model": "credit", "version": version, "role": role, "served": role != "shadow",
        "time": start + np.sort(rng.random(n)) * intervals * INTERVAL, "latency_ms": rng.gamma(2.0, 3.0, n),
        "status": status, "error": np.where(ok, None, "failed"), "features": features,
        "prediction": [json.dumps([p]) if good else "" for p, good in zip(predicted, ok, strict=True)],
        "score": [json.dumps([round(float(s), 6)]) if good and scores else ""
                  for s, good in zip(score, ok, strict=True)],
        "seq": np.arange(n), "label": [json.dumps([t]) if labels else None for t in truth]})


def _champion(n: int = 3000, **options: Any) -> pd.DataFrame:
    return _records(n, version="v1.0.0", role="champion", seed=7, **options)


def _log(*frames: pd.DataFrame) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    assert list(frame.columns) == [*COLUMNS, "seq", "label"]
    return frame


def _model(metrics: dict[str, dict[str, Any]] | None = None, **changes: Any) -> ModelDeployment:
    settings = Settings(interval=INTERVAL, min_samples=100, failure_limit=2, inconclusive_limit=3,
                        metrics=METRICS if metrics is None else metrics)
    model = ModelDeployment("credit", "v1.0.0", "v1.1.0", "canary", 10,
                            (Step(10, 600.0), Step(50, 600.0), Step(100, 0.0)), settings, since=SINCE)
    return replace(model, **changes)


@pytest.fixture(scope="module")
def reference() -> profiles.Profile:
    return profiles.build(_rows(4000, 99), ["income", "debt"], ["region"])


def _run(log: pd.DataFrame, model: ModelDeployment, completed: int, reference: profiles.Profile | None = None,
         extra: float = 10.0) -> Analysis:
    return analyse(log, model, SINCE + completed * INTERVAL + extra, profile=reference, card=CARD)


def _metric(analysis: Analysis, interval: int, name: str) -> MetricResult:
    return next(m for m in analysis.intervals[interval].metrics if m.name == name)


def test_a_healthy_challenger_holds_through_the_pause_then_advances(reference: profiles.Profile) -> None:
    log = _log(_champion(labels=True), _records(900, labels=True))
    model = _model()
    early = _run(log, model, 1, reference)
    assert [i.status for i in early.intervals] == ["pass", "running"]
    assert {m.name: m.status for m in early.intervals[0].metrics} == {
        "error_rate": "pass", "latency_p99_ms": "pass", "agreement": "skipped", "prediction_drift": "pass",
        "input_drift": "pass", "performance": "pass"}
    held = decide(model, early.intervals, early.now)
    assert (held.action, held.wait_s) == ("hold", pytest.approx(290.0))
    later = _run(log, model, 2, reference)
    decision = decide(model, later.intervals, later.now)
    assert (decision.action, decision.next_weight, decision.since) == ("advance", 50, later.now)
    assert json.loads(json.dumps(later.to_json()))["intervals"][1]["metrics"][0]["name"] == "error_rate"


def test_an_erroring_challenger_aborts_after_exactly_failure_limit_intervals() -> None:
    log = _log(_champion(), _records(900, errors=0.2))
    model = _model({"error_rate": {"max": 0.02}})
    first = _run(log, model, 1)
    assert first.intervals[0].status == "fail"
    assert decide(model, first.intervals, first.now).action == "hold"
    second = _run(log, model, 2)
    decision = decide(model, second.intervals, second.now)
    assert (decision.action, decision.next_weight) == ("abort", 0)
    rate = _metric(second, 1, "error_rate")
    assert rate.value == pytest.approx(0.2, abs=0.07)
    assert "with status >= 500): above the max 2.0%" in rate.reason
    assert any("error rate" in reason for reason in decision.reasons)


def test_client_errors_are_neither_errors_nor_samples() -> None:
    log = _log(_champion(), _records(900, client_errors=0.5))
    analysis = _run(log, _model({"error_rate": {"max": 0.0}}), 1)
    rate = _metric(analysis, 0, "error_rate")
    assert (rate.status, rate.value) == ("pass", 0.0)
    assert analysis.intervals[0].samples == rate.n
    assert 100 < analysis.intervals[0].samples < 220  # about half of ~300 answers


def test_too_few_samples_is_inconclusive_never_a_failure_and_pauses_at_the_limit() -> None:
    log = _log(_champion(), _records(120, errors=1.0, intervals=4))  # every answer an error, ~30 an interval
    model = _model({"error_rate": {"max": 0.02}})
    analysis = _run(log, model, 2)
    assert [i.status for i in analysis.completed] == ["inconclusive", "inconclusive"]
    assert "fewer than min_samples 100" in analysis.intervals[0].reason
    assert _metric(analysis, 0, "error_rate").status == "inconclusive"  # its value is kept, not judged
    assert _metric(analysis, 0, "error_rate").value == 1.0
    assert decide(model, analysis.intervals, analysis.now).action == "hold"
    analysis = _run(log, model, 3)
    decision = decide(model, analysis.intervals, analysis.now)
    assert decision.action == "pause"
    assert "min_samples 100" in decision.reasons[1]


def test_shifted_inputs_fail_input_drift(reference: profiles.Profile) -> None:
    log = _log(_champion(), _records(900, shift=25.0))
    analysis = _run(log, _model({"input_drift": {"alpha": 0.01}}), 1, reference)
    drift = _metric(analysis, 0, "input_drift")
    assert (drift.status, analysis.intervals[0].status) == ("fail", "fail")
    assert drift.details["drifted"] == ["income"]
    calm = _run(_log(_champion(), _records(900)), _model({"input_drift": {"alpha": 0.01}}), 1, reference)
    assert _metric(calm, 0, "input_drift").status == "pass"


def test_input_drift_without_a_reference_profile_is_skipped() -> None:
    analysis = _run(_log(_champion(), _records(900)), _model({"input_drift": {"alpha": 0.01}}), 1)
    assert _metric(analysis, 0, "input_drift").status == "skipped"


@pytest.mark.parametrize("scores", [True, False])
def test_shifted_predictions_fail_prediction_drift(scores: bool) -> None:
    """Scores compared by KS; with none logged, the classes by chi-squared."""
    model = _model({"prediction_drift": {"alpha": 0.01}})
    shifted = _run(_log(_champion(scores=scores), _records(900, lean=2.0, scores=scores)), model, 1)
    drift = _metric(shifted, 0, "prediction_drift")
    assert drift.status == "fail"
    assert drift.details["column"] == ("score" if scores else "prediction")
    assert ("KS" if scores else "chi-squared") in drift.reason
    same = _run(_log(_champion(scores=scores), _records(900, scores=scores)), model, 1)
    assert _metric(same, 0, "prediction_drift").status == "pass"


def test_labels_join_into_performance() -> None:
    model = _model({"performance": {"max_drop": 0.15, "min_labels": 100}})
    worse = _run(_log(_champion(labels=True), _records(900, flip=1.0, labels=True)), model, 1)
    performance = _metric(worse, 0, "performance")
    assert performance.status == "fail"
    assert performance.details["metric"] == "accuracy"
    assert performance.value == pytest.approx(performance.details["champion"] - performance.details["challenger"])
    assert 0.2 < performance.value < 0.4
    low, high = performance.details["ci"]
    assert 0.15 < low < performance.value < high
    fine = _run(_log(_champion(labels=True), _records(900, labels=True)), model, 1)
    assert _metric(fine, 0, "performance").status == "pass"
    unlabelled = _run(_log(_champion(labels=True), _records(900)), model, 1)
    assert _metric(unlabelled, 0, "performance").status == "inconclusive"
    assert "0 labelled rows for the challenger" in _metric(unlabelled, 0, "performance").reason
    assert unlabelled.intervals[0].status == "inconclusive"  # nothing else was measured


def test_a_drop_within_the_noise_is_inconclusive_not_a_failure() -> None:
    model = _model({"performance": {"max_drop": 0.02, "min_labels": 100}})
    noisy = _run(_log(_champion(labels=True), _records(900, flip=0.1, labels=True)), model, 1)
    performance = _metric(noisy, 0, "performance")
    assert performance.value is not None and performance.value > 0.02  # above max_drop, by less than the noise
    assert performance.status == "inconclusive"
    assert "more labels will tell" in performance.reason


def test_performance_of_a_loss_counts_the_challenger_worse_when_it_is_higher() -> None:
    model = _model({"performance": {"max_drop": 0.02, "min_labels": 100, "metric": "brier"}})
    worse = _run(_log(_champion(labels=True), _records(900, lean=1.5, labels=True)), model, 1)
    performance = _metric(worse, 0, "performance")
    assert performance.details["challenger"] > performance.details["champion"]
    assert performance.value == pytest.approx(performance.details["challenger"] - performance.details["champion"])
    assert performance.status == "fail"


def test_a_canary_skips_agreement_and_says_why() -> None:
    model = _model({"agreement": {"min": 0.9}, "error_rate": {"max": 0.02}})
    analysis = _run(_log(_champion(), _records(900)), model, 1)
    agreement = _metric(analysis, 0, "agreement")
    assert agreement.status == "skipped"
    assert "each request is answered by one version only" in agreement.reason
    assert analysis.intervals[0].status == "pass"  # a skipped metric decides nothing; no metric failed


def test_shadow_agreement_pairs_rows_by_request_and_labels_join_from_the_champion() -> None:
    ids = [f"request-{i}" for i in range(900)]
    champion = _records(900, version="v1.0.0", role="champion", seed=3, ids=ids, labels=True)
    shadow = _records(900, role="shadow", seed=3, ids=ids, flip=0.4)  # same requests, labels not on its records
    model = _model({"agreement": {"min": 0.9}, "performance": {"max_drop": 0.02, "min_labels": 100}},
                   mode="shadow")
    analysis = _run(_log(champion, shadow), model, 1)
    agreement = _metric(analysis, 0, "agreement")
    assert agreement.status == "fail"
    assert agreement.value == pytest.approx(0.6, abs=0.07)
    assert agreement.n == analysis.intervals[0].samples
    assert _metric(analysis, 0, "performance").status == "fail"


def test_the_interval_still_running_is_shown_not_judged() -> None:
    healthy = _records(600, intervals=2)
    failing = _records(150, seed=2, errors=1.0, start=SINCE + 2 * INTERVAL, intervals=0.5)
    model = _model({"error_rate": {"max": 0.02}}, analysis=replace(_model().analysis, failure_limit=1,
                                                                     metrics={"error_rate": {"max": 0.02}}))
    analysis = _run(_log(_champion(), healthy, failing), model, 2, extra=160.0)
    running = analysis.intervals[-1]
    assert (running.complete, running.status) == (False, "running")
    assert _metric(analysis, 2, "error_rate").value == 1.0
    assert decide(model, analysis.intervals, analysis.now).action == "advance"


def test_at_weight_100_a_passing_interval_promotes() -> None:
    model = _model({"error_rate": {"max": 0.02}}, weight=100)
    analysis = _run(_log(_champion(), _records(900)), model, 1)
    decision = decide(model, analysis.intervals, analysis.now)
    assert (decision.action, decision.next_weight) == ("promote", 100)


def test_records_before_the_step_and_of_other_versions_are_left_out() -> None:
    earlier = _records(500, seed=5, errors=1.0, start=SINCE - 2 * INTERVAL, intervals=2)
    other = _records(500, version="v0.9.0", seed=6, errors=1.0)
    analysis = _run(_log(_champion(), _records(900), earlier, other), _model({"error_rate": {"max": 0.02}}), 1)
    assert _metric(analysis, 0, "error_rate").value == 0.0
