"""Alerts (monitor/alerts.py): one incident per model and cause, opened after group_wait, updated
while the condition holds with a notice at most every repeat_interval, closed after cooldown; an
inconclusive window neither fires nor clears."""

from __future__ import annotations

from modelops_ci.gates.result import Check
from modelops_ci.monitor.alerts import AlertPolicy, Incident, decide, read_incident, signals
from modelops_ci.monitor.assess import Assessment

HOUR = 3600.0
DEFAULT = AlertPolicy()


def window(hour: int, status: str, model: str = "credit", rows: int = 1000, shifted: bool | None = None) -> Assessment:
    checks = [] if shifted is None else [Check("prediction", "warn" if shifted else "pass", "")]
    return Assessment(model, "v1", hour * HOUR, (hour + 1) * HOUR, rows, status, f"{status} at {hour}",  # type: ignore[arg-type]
                      checks, ["income"] if status == "drift" else [], bool(shifted))


def actions(windows: list[Assessment], policy: AlertPolicy = DEFAULT, now_hour: float = 10,
            incidents: tuple[Incident, ...] = ()) -> list[tuple[str, str, str, bool]]:
    return [(a.kind, a.model, a.cause, a.notify)
            for a in decide(signals(windows, policy), incidents, policy, now_hour * HOUR)]


def incident(first_hour: float, notified_hour: float, cause: str = "input_drift") -> Incident:
    return Incident("credit", cause, 7, first_hour * HOUR, notified_hour * HOUR)


def test_a_drifted_window_opens_one_incident_per_model_and_cause() -> None:
    windows = [window(7, "pass"), window(8, "drift"), window(9, "drift"), window(8, "drift", model="churn")]
    assert actions(windows) == [("open", "churn", "input_drift", True), ("open", "credit", "input_drift", True)]


def test_the_first_notice_waits_until_the_condition_held_for_group_wait() -> None:
    policy = AlertPolicy(group_wait=2 * HOUR)
    assert actions([window(8, "pass"), window(9, "drift")], policy, now_hour=10) == [
        ("wait", "credit", "input_drift", False)]
    assert actions([window(7, "drift"), window(8, "drift"), window(9, "drift")], policy, now_hour=10) == [
        ("open", "credit", "input_drift", True)]


def test_while_it_holds_the_incident_is_updated_and_notifies_once_per_repeat_interval() -> None:
    policy = AlertPolicy(repeat_interval=4 * HOUR)
    windows = [window(8, "drift"), window(9, "drift")]
    assert actions(windows, policy, 10, (incident(8, 9),)) == [("update", "credit", "input_drift", False)]
    assert actions(windows, policy, 10, (incident(2, 5),)) == [("update", "credit", "input_drift", True)]


def test_it_closes_with_a_notice_once_clear_for_the_cooldown() -> None:
    policy = AlertPolicy(cooldown=2 * HOUR)
    assert actions([window(8, "drift"), window(9, "pass")], policy, 10, (incident(8, 8),)) == [
        ("update", "credit", "input_drift", False)]
    assert actions([window(6, "drift"), window(7, "pass"), window(8, "pass"), window(9, "pass")], policy, 10,
                   (incident(6, 6),)) == [("close", "credit", "input_drift", True)]


def test_an_inconclusive_window_neither_fires_nor_clears() -> None:
    assert actions([window(9, "inconclusive"), window(8, "error")]) == []
    after_drift = [window(8, "drift"), window(9, "inconclusive")]
    assert actions(after_drift, AlertPolicy(), 10, (incident(8, 8),)) == [("update", "credit", "input_drift", False)]
    only_thin = [window(9, "inconclusive")]
    assert actions(only_thin, AlertPolicy(), 10, (incident(8, 8),)) == [("update", "credit", "input_drift", False)]


def test_only_the_causes_the_policy_names_alert() -> None:
    windows = [window(9, "pass", shifted=True, rows=40)]
    assert actions(windows) == []
    policy = AlertPolicy(alert_on=frozenset({"prediction_drift", "volume"}), min_rows=100)
    assert actions(windows, policy) == [("open", "credit", "prediction_drift", True),
                                        ("open", "credit", "volume", True)]


def test_the_incident_state_round_trips_through_its_marker_and_a_mangled_one_is_no_incident() -> None:
    kept = Incident("credit", "input_drift", 12, 28800.0, 32400.0)
    body = f"{kept.marker()}\n## Drift\n..."
    assert read_incident(12, body) == kept
    assert read_incident(12, body.replace("first_seen=28800", "first_seen=soon")) is None
    assert read_incident(12, body.replace("input_drift", "rm -rf")) is None
    assert read_incident(12, "no marker here") is None


def test_an_open_incident_with_no_window_to_judge_stays_open_without_a_notice() -> None:
    [action] = decide([], [incident(8, 8)], AlertPolicy(), 10 * HOUR)
    assert (action.kind, action.notify, action.incident) == ("update", False, incident(8, 8))
    assert action.reason.startswith("no window could be judged")


def test_performance_fires_only_when_surely_under_the_policys_least_and_realised_wins() -> None:
    from dataclasses import replace

    from modelops_ci.monitor.estimate import Estimate

    policy = AlertPolicy(alert_on=frozenset({"performance"}), min_performance={"accuracy": 0.8})
    low = Estimate("accuracy", 0.72, 0.69, 0.75, 1000, realised=False)
    unsure = Estimate("accuracy", 0.79, 0.76, 0.82, 1000, realised=False)
    good = Estimate("accuracy", 0.86, 0.83, 0.89, 400, realised=True)
    firing = replace(window(9, "pass"), performance=(low,))
    assert actions([firing], policy) == [("open", "credit", "performance", True)]
    assert actions([replace(window(9, "pass"), performance=(unsure,))], policy) == []  # the interval straddles 0.8
    assert actions([replace(window(9, "pass"), performance=(low, good))], policy) == []  # the labels say otherwise
    [signal] = [s for s in signals([firing], policy) if s.cause == "performance"]
    assert signal.reason == ("accuracy estimated 0.720 (95% interval 0.690 to 0.750), the policy's least 0.8: "
                             "firing")
