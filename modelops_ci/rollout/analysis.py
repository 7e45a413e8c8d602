"""The roll-out analysis: the time since the current step began, cut into intervals, each judged on
the configured metrics for the challenger.

An interval with fewer than `min_samples` challenger answers is inconclusive as a whole, never a
failure (Flagger counts no data as a failure; its users complain). Samples are answers (requests),
not rows: error rate and latency are per request, and one caller's request of 1,000 rows must not
stand in for 1,000 callers. A 4xx answer is the caller's fault and is no sample. Otherwise an
interval fails if any metric fails, passes if at least one passed and none failed, and is
inconclusive if no metric could be judged. The interval still running is measured and shown, not
judged. Labels join as they arrive, so an interval's performance may be judged on a later run.

Everything is plain data (`to_json`) for the reports; nothing here reads a file or the clock. A
previous step is analysed the same way: its `since` and weight in the model, and `now` when it ended.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.rollout import metrics, traffic
from modelops_ci.rollout.metrics import MetricResult

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.gates.profile import Profile
    from modelops_ci.rollout.traffic import Window
    from modelops_ci.spec.deployment import ModelDeployment

IntervalStatus = Literal["pass", "fail", "inconclusive", "running"]


@dataclass(frozen=True)
class Interval:
    """One interval of the current step and its verdict."""

    index: int  # from 1, as people count
    start: float
    end: float
    complete: bool
    status: IntervalStatus
    reason: str
    samples: int  # the challenger's answers (4xx excluded)
    champion_answers: int
    metrics: tuple[MetricResult, ...]

    @property
    def label(self) -> str:
        """`interval 3 (10:05:00-10:10:00 UTC)`."""
        return f"interval {self.index} ({clock(self.start)}-{clock(self.end)} UTC)"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["label"] = self.label
        return data


@dataclass(frozen=True)
class Analysis:
    """A model's roll-out step and its intervals, oldest first."""

    model: str
    champion: str | None
    challenger: str | None
    mode: str
    weight: int
    step: int | None  # index into the deployment's steps
    since: float | None
    now: float
    interval: float
    min_samples: int
    intervals: tuple[Interval, ...]

    @property
    def completed(self) -> tuple[Interval, ...]:
        return tuple(i for i in self.intervals if i.complete)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "intervals"}
        return {**data, "intervals": [i.to_json() for i in self.intervals]}


def analyse(frame: pd.DataFrame, model: ModelDeployment, now: float, *, profile: Profile | None = None,
            card: Mapping[str, Any] | None = None) -> Analysis:
    """The intervals of `model`'s current step in the log's records `frame` (one row per record: the
    record's columns, `seq` and `label`), up to `now` (unix seconds). `profile`: the champion's
    reference profile, for input drift; `card`: the model card, for performance on labels."""
    settings = model.analysis
    intervals: tuple[Interval, ...] = ()
    if model.challenger is not None and model.since is not None:
        with _collector_paused():  # the parsed log is freed before the collector is back
            intervals = _intervals(model, model.since, now, metrics.Context(
                traffic.split(frame, model, model.since, now), model.mode, profile, card))
    return Analysis(model.name, model.champion, model.challenger, model.mode, model.weight, model.step,
                    model.since, now, settings.interval, settings.min_samples, intervals)


def _intervals(model: ModelDeployment, since: float, now: float, context: metrics.Context) -> tuple[Interval, ...]:
    settings = model.analysis
    cut = traffic.windows(context.traffic, since, settings.interval, now)
    return tuple(_interval(context, window, settings.metrics, settings.min_samples) for window in cut)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing the log makes a million small objects, none in a cycle; the cyclic collector would scan
    them again and again as they pile up (measured: half the analysis's time). Refcounting frees them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _interval(context: metrics.Context, window: Window, configured: Mapping[str, Mapping[str, Any]],
              min_samples: int) -> Interval:
    measured = tuple(metrics.MEASURES[name](context, window, dict(bound)) for name, bound in configured.items())
    samples = int(context.traffic.challenger.judged[window.challenger].sum())
    champion = int(context.traffic.champion.judged[window.champion].sum())
    status, reason = _verdict(window, measured, samples, min_samples)
    if status == "inconclusive" and samples < min_samples:
        measured = tuple(_unjudged(m, samples, min_samples) for m in measured)
    return Interval(window.index + 1, window.start, window.end, window.complete, status, reason, samples, champion,
                    measured)


def _verdict(window: Window, measured: tuple[MetricResult, ...], samples: int,
             min_samples: int) -> tuple[IntervalStatus, str]:
    if not window.complete:
        return "running", f"still running until {clock(window.end)} UTC: shown, not judged"
    if samples < min_samples:
        return "inconclusive", (f"{samples:,} challenger answers, fewer than min_samples {min_samples:,}: "
                                "too little data to judge (not a failure)")
    failed = [m for m in measured if m.status == "fail"]
    if failed:
        return "fail", "; ".join(m.reason for m in failed)
    passed = [m for m in measured if m.status == "pass"]
    unjudged = [f"{m.name}: {m.reason}" for m in measured if m.status == "inconclusive"]
    if not measured:
        return "pass", f"{samples:,} challenger answers; no metric is configured (analysis.metrics)"
    if not passed:
        return "inconclusive", "no metric could be judged: " + "; ".join(unjudged or [m.reason for m in measured])
    names = ", ".join(m.name for m in passed)
    rest = f"; not judged: {'; '.join(unjudged)}" if unjudged else ""
    return "pass", f"{samples:,} challenger answers; within bounds: {names}{rest}"


def _unjudged(measured: MetricResult, samples: int, min_samples: int) -> MetricResult:
    """An under-sampled interval's metric: its value kept for the charts, its verdict withheld."""
    if measured.status not in ("pass", "fail"):
        return measured
    reason = f"{measured.reason} (not judged: {samples:,} answers, min_samples {min_samples:,})"
    return MetricResult(measured.name, "inconclusive", reason, measured.value, measured.bound, measured.n,
                        measured.details)


def clock(seconds: float) -> str:
    """A unix time as `HH:MM:SS` (UTC): intervals are minutes long, `moment` gives the date."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")


def moment(seconds: float) -> str:
    """A unix time as `2026-12-06 10:05:00 UTC`."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """`1 h 5 min`, `4 min 10 s`, `45 s`."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value} {unit}" for value, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if value]
    return " ".join(parts[:2]) or "0 s"
