"""The roll-out decision rule by rule, on intervals written out by hand (the analysis that makes
them from the log is tested in test_rollout_analysis.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelops_ci.rollout.analysis import Interval, IntervalStatus
from modelops_ci.rollout.decision import decide
from modelops_ci.spec.deployment import Analysis, ModelDeployment, Step

SINCE = 1_800_000_000.0
INTERVAL = 300.0
STEPS = (Step(10, 600.0), Step(50, 600.0), Step(100, 0.0))


def _model(**changes: object) -> ModelDeployment:
    model = ModelDeployment("credit", "v1.0.0", "v1.1.0", "canary", 10, STEPS, since=SINCE,
                            analysis=Analysis(interval=INTERVAL, min_samples=100, failure_limit=2,
                                              inconclusive_limit=3))
    return replace(model, **changes)  # type: ignore[arg-type]


def _intervals(*statuses: IntervalStatus, samples: int = 500) -> list[Interval]:
    """Completed intervals from SINCE with these verdicts; a last "running" one is still open."""
    made = []
    for k, status in enumerate(statuses):
        start = SINCE + k * INTERVAL
        shown = samples if status != "inconclusive" else 12
        made.append(Interval(k + 1, start, start + INTERVAL, status != "running", status, f"why {k + 1}", shown,
                             500, ()))
    return made


def _at(completed: int, extra: float = 10.0) -> float:
    return SINCE + completed * INTERVAL + extra


def test_no_challenger_is_idle() -> None:
    decision = decide(_model(challenger=None, weight=0), [], _at(3))
    assert (decision.action, decision.next_weight) == ("idle", 0)
    assert "nothing to roll out" in decision.reasons[0]


def test_weight_zero_is_idle_and_says_how_to_start() -> None:
    decision = decide(_model(weight=0), _intervals("fail", "fail", "fail"), _at(3))
    assert decision.action == "idle"
    assert "aborted earlier" in decision.reasons[0] and "10%" in decision.reasons[0]


@pytest.mark.parametrize(("statuses", "action"), [
    (("fail",), "hold"),
    (("pass", "fail"), "hold"),
    (("fail", "pass", "fail"), "hold"),  # the streak was broken
    (("fail", "fail"), "abort"),
    (("pass", "fail", "fail"), "abort"),
])
def test_abort_after_exactly_failure_limit_failures_in_a_row(statuses: tuple[IntervalStatus, ...],
                                                             action: str) -> None:
    now = _at(len(statuses))
    decision = decide(_model(), _intervals(*statuses), now)
    assert decision.action == action
    if action == "abort":
        assert (decision.next_weight, decision.since) == (0, now)
        assert "failure_limit 2" in decision.reasons[0]
        assert decision.reasons[1].startswith(f"interval {len(statuses) - 1} (")
        assert "the champion v1.0.0 answers all traffic" in decision.reasons[-1]
    else:
        assert decision.next_weight == 10


def test_the_running_interval_is_not_judged() -> None:
    intervals = _intervals("fail", "running")
    intervals[-1] = replace(intervals[-1], status="running", reason="all errors so far")
    decision = decide(_model(), intervals, _at(1, 200))
    assert decision.action == "hold"
    assert decision.judged == 1


def test_inconclusive_streak_pauses_and_says_what_data_is_missing() -> None:
    assert decide(_model(), _intervals("inconclusive", "inconclusive"), _at(2)).action == "hold"
    decision = decide(_model(), _intervals("pass", "inconclusive", "inconclusive", "inconclusive"), _at(4))
    assert (decision.action, decision.next_weight) == ("pause", 10)
    assert "inconclusive_limit 3" in decision.reasons[0]
    assert "fewer than min_samples 100 challenger answers (36 in all over 15 min)" in decision.reasons[1]
    assert decision.reasons[-1].startswith("interval 4 (")


def test_hold_during_the_pause_says_how_long() -> None:
    decision = decide(_model(), _intervals("pass"), _at(1))
    assert (decision.action, decision.next_weight) == ("hold", 10)
    assert decision.wait_s == pytest.approx(290.0)
    assert "step 1 of 3 (10%) holds for 4 min 50 s more" in decision.reasons[0]


def test_advance_after_the_pause_when_the_last_interval_passed() -> None:
    now = _at(2)
    decision = decide(_model(), _intervals("fail", "pass"), now)
    assert (decision.action, decision.next_weight, decision.since) == ("advance", 50, now)
    assert decision.reasons[-1] == "advance the challenger v1.1.0 to 50% (step 2 of 3)"
    assert "interval 2 (" in decision.reasons[1] and "passed" in decision.reasons[1]


@pytest.mark.parametrize("last", ["fail", "inconclusive"])
def test_no_advance_after_the_pause_unless_the_last_interval_passed(last: IntervalStatus) -> None:
    decision = decide(_model(), _intervals("pass", "pass", last), _at(3, 100))
    assert decision.action == "hold"
    assert decision.wait_s == pytest.approx(200.0)  # until the next interval completes
    assert "goes on to the next step once a completed interval passes" in decision.reasons[0]
    assert last in decision.reasons[-1]


def test_no_completed_interval_yet() -> None:
    decision = decide(_model(), _intervals("running"), _at(0, 60))
    assert decision.action == "hold"
    assert "no interval has completed yet" in decision.reasons[-1]


def test_the_last_step_promotes_once_an_interval_passed() -> None:
    model = _model(weight=100)
    waiting = decide(model, _intervals("running"), _at(0, 60))
    assert (waiting.action, waiting.wait_s) == ("hold", pytest.approx(240.0))
    assert "goes on to the promotion once a completed interval passes" in waiting.reasons[0]
    decision = decide(model, _intervals("pass"), _at(1))
    assert (decision.action, decision.next_weight) == ("promote", 100)
    assert "promotion-request" in decision.reasons[-1]


def test_an_unrecorded_start_is_recorded_now() -> None:
    now = _at(5)
    decision = decide(_model(since=None), [], now)
    assert (decision.action, decision.since) == ("hold", now)
    assert "`since`" in decision.reasons[0]


def test_a_weight_that_is_no_step_pauses() -> None:
    decision = decide(_model(weight=30), _intervals("pass"), _at(1))
    assert decision.action == "pause"
    assert "10%, 50%, 100%" in decision.reasons[0]


def test_the_decision_is_plain_data() -> None:
    import json

    data = decide(_model(), _intervals("fail", "fail"), _at(2)).to_json()
    assert json.loads(json.dumps(data))["action"] == "abort"
