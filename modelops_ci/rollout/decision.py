"""What the reconciler does with a model's analysis: advance | hold | abort | pause | promote | idle.

Only completed intervals count; the one still running is shown, never judged. In order:
- no challenger, or weight 0: idle;
- the last `failure_limit` completed intervals all failed: abort (weight 0);
- the last `inconclusive_limit` completed intervals all inconclusive: pause, for a person;
- the step's pause has elapsed since `since` and the last completed interval passed: advance to the
  next step's weight; at the last step (100%), promote: hand over to the signed promotion;
- otherwise hold, saying how long until the step may advance.
Reasons are sentences for a PR body: numbers with units, the bound, the interval. Pure: `now` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.rollout.analysis import Interval, IntervalStatus, clock, duration, moment

if TYPE_CHECKING:
    from modelops_ci.spec.deployment import ModelDeployment

Action = Literal["advance", "hold", "abort", "pause", "promote", "idle"]


@dataclass(frozen=True)
class Decision:
    """What to do with one model's roll-out, and why."""

    model: str
    action: Action
    reasons: tuple[str, ...]
    weight: int  # the challenger's share now (percent)
    next_weight: int  # its share after the decision
    since: float | None  # the step's start to record: `now` when the weight changes, else as it was
    wait_s: float | None = None  # hold: seconds until the step may advance at the earliest
    judged: int = 0  # completed intervals behind the decision

    @property
    def changes_weight(self) -> bool:
        return self.next_weight != self.weight

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(model: ModelDeployment, intervals: Sequence[Interval], now: float) -> Decision:
    """The decision for `model` (its deployment entry) given its current step's `intervals`."""
    completed = [i for i in intervals if i.complete]
    if model.challenger is None:
        return _idle(model, f"no challenger: nothing to roll out; the champion {model.champion} answers all traffic")
    if model.weight == 0:
        return _idle(model, f"the challenger {model.challenger} has weight 0%: not started, or aborted earlier; to "
                     f"start it, set its weight to the first step's {model.steps[0].weight}%")
    if model.step is None:
        shares = ", ".join(f"{s.weight}%" for s in model.steps)
        return _same(model, "pause", [f"the weight {model.weight}% is none of the steps' ({shares}): set a step's "
                                      "weight, or 0 to stop the challenger"], completed)
    if model.since is None:
        return Decision(model.name, "hold", (f"the step's start (`since`) is not recorded: its pause counts from now, "
                                             f"{moment(now)}",), model.weight, model.weight, now,
                        model.steps[model.step].pause)
    limit = model.analysis.failure_limit
    if _streak(completed, "fail") >= limit:
        return _abort(model, completed[-limit:], now, len(completed))
    if _streak(completed, "inconclusive") >= model.analysis.inconclusive_limit:
        return _pause(model, completed)
    return _move_or_hold(model, model.step, model.since, completed, now)


def _idle(model: ModelDeployment, reason: str) -> Decision:
    return Decision(model.name, "idle", (reason,), model.weight, model.weight, model.since)


def _same(model: ModelDeployment, action: Action, reasons: list[str], completed: list[Interval],
          wait_s: float | None = None) -> Decision:
    return Decision(model.name, action, tuple(reasons), model.weight, model.weight, model.since, wait_s,
                    len(completed))


def _streak(completed: list[Interval], status: IntervalStatus) -> int:
    """How many of the last completed intervals, counting back, have `status`."""
    count = 0
    for interval in reversed(completed):
        if interval.status != status:
            break
        count += 1
    return count


def _abort(model: ModelDeployment, failed: list[Interval], now: float, judged: int) -> Decision:
    limit = len(failed)
    reasons = [f"the last {limit} completed intervals failed (failure_limit {limit}): abort the challenger "
               f"{model.challenger} at {model.weight}%"]
    reasons += [f"{i.label}: {i.reason}" for i in failed]
    reasons.append(f"its weight goes to 0%: the champion {model.champion} answers all traffic")
    return Decision(model.name, "abort", tuple(reasons), model.weight, 0, now, judged=judged)


def _pause(model: ModelDeployment, completed: list[Interval]) -> Decision:
    settings = model.analysis
    streak = completed[-settings.inconclusive_limit:]
    reasons = [f"the last {len(streak)} completed intervals were inconclusive (inconclusive_limit {len(streak)}): "
               f"the roll-out holds at {model.weight}% for a person to look"]
    short = [i for i in streak if i.samples < settings.min_samples]
    if short:
        answers = sum(i.samples for i in streak)
        reasons.append(f"{len(short)} of them had fewer than min_samples {settings.min_samples:,} challenger "
                       f"answers ({answers:,} in all over {duration(settings.interval * len(streak))}): send the "
                       f"challenger more traffic, lengthen analysis.interval or lower analysis.min_samples")
    latest = streak[-1]
    reasons.append(f"{latest.label}: {latest.reason}")
    return _same(model, "pause", reasons, completed)


def _move_or_hold(model: ModelDeployment, step: int, since: float, completed: list[Interval],
                  now: float) -> Decision:
    last_step = step == len(model.steps) - 1
    remaining = since + model.steps[step].pause - now
    last = completed[-1] if completed else None
    if last is not None and last.status == "pass" and (last_step or remaining <= 0):
        return _move(model, step, since, last, now, len(completed))
    pausing = remaining > 0 and not last_step
    next_end = since + model.analysis.interval * (len(completed) + 1)
    if pausing:
        first = (f"{_position(model, step)} holds for {duration(remaining)} more: its pause is "
                 f"{duration(model.steps[step].pause)} from {moment(since)}")
        wait = remaining
    else:
        move = "the promotion" if last_step else "the next step"
        first = (f"{_position(model, step)} goes on to {move} once a completed interval passes; the next "
                 f"completes at {clock(next_end)} UTC")
        wait = max(next_end - now, 0.0)
    return _same(model, "hold", [first, _last_word(model, completed, since)], completed, wait)


def _move(model: ModelDeployment, step: int, since: float, last: Interval, now: float, judged: int) -> Decision:
    passed = f"{last.label} passed: {last.reason}"
    if step == len(model.steps) - 1:
        reasons = (f"the challenger {model.challenger} has answered at {model.weight}%, the last step, since "
                   f"{moment(since)}", passed,
                   f"promote: hand {model.challenger} over to the signed promotion (promotion-request)")
        return Decision(model.name, "promote", reasons, model.weight, model.weight, since, judged=judged)
    following = model.steps[step + 1].weight
    reasons = (f"{_position(model, step)} began {moment(since)} and its pause of {duration(model.steps[step].pause)} "
               "has elapsed", passed,
               f"advance the challenger {model.challenger} to {following}% (step {step + 2} of "
               f"{len(model.steps)})")
    return Decision(model.name, "advance", reasons, model.weight, following, now, judged=judged)


def _position(model: ModelDeployment, step: int) -> str:
    return f"step {step + 1} of {len(model.steps)} ({model.weight}%)"


def _last_word(model: ModelDeployment, completed: list[Interval], since: float) -> str:
    """What the completed intervals say so far, for a hold."""
    if not completed:
        first_end = since + model.analysis.interval
        return f"no interval has completed yet: the first ends at {clock(first_end)} UTC"
    last = completed[-1]
    if last.status == "pass":
        return f"{last.label} passed: {last.reason}"
    if last.status == "fail":
        streak = _streak(completed, "fail")
        return (f"{last.label} failed ({streak} in a row; failure_limit {model.analysis.failure_limit} aborts): "
                f"{last.reason}; the step advances only after a completed interval passes")
    streak = _streak(completed, "inconclusive")
    return (f"{last.label} was inconclusive ({streak} in a row; inconclusive_limit "
            f"{model.analysis.inconclusive_limit} pauses): {last.reason}")
