"""Alerts people can live with: one incident per model and cause, opened once the condition has held
for `group_wait`, updated while it holds (a notifying comment at most every `repeat_interval`, as
Alertmanager repeats), closed with a comment once it has been clear for `cooldown`. A window that
could not be judged (too few rows, unreadable data) neither fires nor clears anything.

Pure: the windows' signals, the incidents open now (their state kept in each issue's marker line)
and the clock in; the actions out (monitor's command carries them out on GitHub).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelops_ci.monitor.assess import Assessment

Cause = Literal["input_drift", "prediction_drift", "performance", "volume"]
CAUSES: tuple[Cause, ...] = ("input_drift", "prediction_drift", "performance", "volume")
SignalState = Literal["firing", "clear", "inconclusive"]
ActionKind = Literal["open", "update", "close", "wait"]
MARKER = "modelops-ci:monitor-alert"
_STATE = re.compile(rf"<!-- {MARKER} model=(\S+) cause=(\S+) first_seen=([0-9.]+) last_notified=([0-9.]+) -->")


@dataclass(frozen=True)
class AlertPolicy:
    """Which causes alert, and the timing (seconds) of the notices."""

    alert_on: frozenset[Cause] = frozenset({"input_drift"})
    group_wait: float = 0.0
    repeat_interval: float = 4 * 3600.0
    cooldown: float = 0.0
    min_rows: int = 0  # a judged window with fewer rows than this fires `volume`; 0: volume never alerts
    min_performance: Mapping[str, float] = field(default_factory=dict)  # metric -> the least it may be


@dataclass(frozen=True)
class Signal:
    """One window's verdict on one cause for one model version."""

    model: str
    version: str
    cause: Cause
    start: float
    end: float
    state: SignalState
    reason: str


@dataclass(frozen=True)
class Incident:
    """An open incident issue, and the state its marker line keeps."""

    model: str
    cause: str
    number: int
    first_seen: float
    last_notified: float

    def marker(self) -> str:
        return (f"<!-- {MARKER} model={self.model} cause={self.cause} first_seen={self.first_seen:.0f} "
                f"last_notified={self.last_notified:.0f} -->")


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    model: str
    cause: Cause
    notify: bool  # a comment people are notified of (a body edit alone notifies nobody)
    reason: str
    first_seen: float
    incident: Incident | None = None  # the open incident it acts on (update, close)
    windows: tuple[Signal, ...] = ()  # the signals behind it, newest last


def read_incident(number: int, body: str) -> Incident | None:
    """The incident an issue's body describes, or None when it carries no well-formed marker (an
    issue anyone can edit: a mangled marker is read as no incident, and a new one is opened)."""
    found = _STATE.search(body)
    if found is None or found.group(2) not in CAUSES:
        return None
    return Incident(found.group(1), found.group(2), number, float(found.group(3)), float(found.group(4)))


def signals(assessments: Iterable[Assessment], policy: AlertPolicy) -> list[Signal]:
    """Each assessed window's verdict on each cause."""
    found: list[Signal] = []
    for window in assessments:
        judged = window.status in ("pass", "drift")

        def signal(cause: Cause, state: SignalState, reason: str, w: Assessment = window) -> Signal:
            return Signal(w.model, w.version, cause, w.start, w.end, state, reason)

        drift: SignalState = "inconclusive" if not judged else "firing" if window.status == "drift" else "clear"
        found.append(signal("input_drift", drift, window.reason))
        has_prediction = any(c.name == "prediction" for c in window.checks)
        if judged and has_prediction:
            shifted: SignalState = "firing" if window.prediction_shifted else "clear"
            found.append(signal("prediction_drift", shifted, window.reason))
        if policy.min_performance and window.performance:
            found.append(_performance_signal(window, policy.min_performance))
        if policy.min_rows:
            few = window.rows < policy.min_rows
            found.append(signal("volume", "firing" if few else "clear",
                                f"{window.rows:,} rows in the window, the policy expects at least {policy.min_rows:,}"))
    return found


def _performance_signal(window: Assessment, bounds: Mapping[str, float]) -> Signal:
    """Firing when a metric is surely under its bound (its interval's top), clear when surely at or
    over it, inconclusive when the interval straddles it. Realised metrics, where the window has
    enough labels, take the place of the estimates."""
    best = {e.metric: e for e in sorted(window.performance, key=lambda e: e.realised)}  # realised last: kept
    states: list[SignalState] = []
    said = []
    for metric, least in sorted(bounds.items()):
        measured = best.get(metric)
        if measured is None:
            continue
        state: SignalState = ("firing" if measured.high < least else "clear" if measured.low >= least
                              else "inconclusive")
        states.append(state)
        how = "realised" if measured.realised else "estimated"
        said.append(f"{metric} {how} {measured.value:.3f} (95% interval {measured.low:.3f} to {measured.high:.3f}), "
                    f"the policy's least {least:g}: {state}")
    overall: SignalState = ("firing" if "firing" in states else "inconclusive" if "inconclusive" in states or
                            not states else "clear")
    return Signal(window.model, window.version, "performance", window.start, window.end, overall,
                  "; ".join(said) or "no metric the policy bounds was measured")


def decide(found: Iterable[Signal], incidents: Iterable[Incident], policy: AlertPolicy, now: float) -> list[Action]:
    """What to do about each model and cause the policy alerts on."""
    by_key: dict[tuple[str, str], list[Signal]] = {}
    for signal in found:
        if signal.cause in policy.alert_on:
            by_key.setdefault((signal.model, signal.cause), []).append(signal)
    open_now = {(i.model, i.cause): i for i in incidents}
    actions = []
    for key in sorted(set(by_key) | set(open_now)):
        action = _decided(sorted(by_key.get(key, []), key=lambda s: (s.end, s.version)), open_now.get(key), policy,
                          now, key)
        if action is not None:
            actions.append(action)
    return actions


def _decided(history: list[Signal], incident: Incident | None, policy: AlertPolicy, now: float,
             key: tuple[str, str]) -> Action | None:
    model, cause_text = key
    cause: Cause = next(c for c in CAUSES if c == cause_text)
    conclusive = [s for s in history if s.state != "inconclusive"]
    if not conclusive:
        if incident is None:
            return None
        return Action("update", model, cause, False, "no window could be judged since the last look: the incident "
                      "stays open", incident.first_seen, incident, tuple(history[-3:]))
    last = conclusive[-1]
    run = _trailing_run(conclusive)
    if last.state == "firing":
        since = incident.first_seen if incident is not None else run[0].start
        if incident is not None:
            notify = now - incident.last_notified >= policy.repeat_interval
            return Action("update", model, cause, notify, last.reason, since, incident, tuple(run))
        if now - since >= policy.group_wait:
            return Action("open", model, cause, True, last.reason, since, None, tuple(run))
        return Action("wait", model, cause, False, f"firing since {since:.0f}; the first notice waits "
                      f"group_wait ({policy.group_wait:g} s)", since, None, tuple(run))
    if incident is None:
        return None
    clear_since = run[0].start
    if now - clear_since >= policy.cooldown:
        return Action("close", model, cause, True, last.reason, incident.first_seen, incident, tuple(run))
    return Action("update", model, cause, False, f"clear since {clear_since:.0f}; it closes once clear for the "
                  f"cooldown ({policy.cooldown:g} s)", incident.first_seen, incident, tuple(run))


def _trailing_run(conclusive: list[Signal]) -> list[Signal]:
    """The newest signals that share the last one's state."""
    state = conclusive[-1].state
    start = len(conclusive)
    while start > 0 and conclusive[start - 1].state == state:
        start -= 1
    return conclusive[start:]
