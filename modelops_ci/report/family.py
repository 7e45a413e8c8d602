"""A batched family's series as every report lists them: worst first, each with the check that
decides how close it is to failing, and the family's rule in words (unescaped: each format escapes).

Worst first: failed series (those that could not be evaluated before those that failed a check),
then the others by headroom, the distance of the gated metric's conservative confidence bound (the
lower end for a `min`, the upper for a `max`: the end the gate decides on) from its threshold, as a
share of the threshold. The least headroom is the closest to failing; a negative one is past it.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops_ci.gates.result import SEVERITY, Check
from modelops_ci.gates.verdict import GatesReport, SeriesResult
from modelops_ci.report.format import bound_text, interval, num

CLOSEST = 10  # passing series a summary shows, the closest to failing


@dataclass(frozen=True)
class Ranked:
    """One series in the family's order: its verdict, worst blocking status and gated check."""

    series: SeriesResult
    status: str  # the worst status of its blocking gates ("pass" when none failed)
    check: Check | None  # the check with a threshold closest to failing, if any has one
    headroom: float | None  # that check's distance from its threshold (a share of it; < 0: past it)


def ranked(report: GatesReport) -> list[Ranked]:
    """Every series of the family, worst first."""
    rows = [_rank(series) for series in report.series or []]
    return sorted(rows, key=_order)


def _rank(series: SeriesResult) -> Ranked:
    blocking = [g.status for g in series.gates if not g.advisory] or ["pass"]
    status = max(blocking, key=lambda s: SEVERITY[s])
    if not series.passed and status == "pass":
        status = "fail"  # a verdict without a failed gate in brief: still a failed series
    rooms = [(room, check) for check in _checks(series) if (room := headroom(check)) is not None]
    if not rooms:
        return Ranked(series, status, None, None)
    least, check = min(rooms, key=lambda pair: pair[0])
    return Ranked(series, status, check, least)


def _checks(series: SeriesResult) -> list[Check]:
    return [check for gate in series.gates if not gate.advisory for check in gate.checks]


def _order(row: Ranked) -> tuple[bool, int, bool, float, str]:
    measured = row.headroom is not None
    return (row.series.passed, -SEVERITY[row.status], not measured, row.headroom or 0.0, row.series.name)


def headroom(check: Check) -> float | None:
    """How far the conservative end of the check's CI (its estimate without one) is inside its
    `min`/`max` threshold, as a share of the threshold (absolute for a threshold of 0)."""
    low, high = check.ci or (check.statistic, check.statistic)
    rooms = []
    for kind, bound in (check.threshold or {}).items():
        side = {"min": low, "max": high}.get(kind)
        if side is None:
            continue
        room = side - bound if kind == "min" else bound - side
        rooms.append(room / abs(bound) if bound else room)
    return min(rooms) if rooms else None


def headroom_text(row: Ranked) -> str:
    """`12% inside` (the threshold) / `8% past`; '' without a measured check."""
    if row.headroom is None:
        return ""
    where = "inside" if row.headroom >= 0 else "past"
    return f"{abs(row.headroom):.0%} {where}"


def estimate(row: Ranked) -> str:
    """The gated metric and its estimate: `MASE 0.208`."""
    check = row.check
    return f"{metric_label(check.name)} {num(check.statistic)}" if check else ""


def measured(row: Ranked) -> str:
    """The gated metric with its CI: `MASE 0.208 (0.158 to 0.259)`."""
    check = row.check
    if check is None or check.ci is None:
        return estimate(row)
    return f"{estimate(row)} ({interval(check.ci)})"


def metric_label(name: str) -> str:
    from modelops_ci.gates.performance import LABELS

    return LABELS.get(name, name)


def policy(row: Ranked) -> str:
    return bound_text(row.check.threshold) if row.check else ""


def rule_text(report: GatesReport) -> str:
    """Where the family stands against its rule: `2 of 148 series failed; the policy allows at most
    7 (max_failed_share: 0.05)`."""
    counted = f"{len(report.failed_series)} of {len(report.series or [])} series failed"
    if report.allowed is None:
        return counted
    gate = next((g for g in report.gates if g.gate == "series"), None)
    rules = gate.details.get("rules") if gate else None
    named = [_rule(rule) for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []
    said = f" ({'; '.join(named)})" if named else ""
    return f"{counted}; the policy allows at most {report.allowed}{said}"


def _rule(rule: dict[str, object]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in rule.items())


# -- the per-series charts: one scale per gated metric ---------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Where a value of one gated metric sits on its series' charts (0 left, 1 right)."""

    low: float
    high: float

    def at(self, value: float) -> float:
        """The position of `value`, clipped to the chart (a wild value sits at its edge)."""
        if self.high <= self.low:
            return 0.5
        return min(1.0, max(0.0, (value - self.low) / (self.high - self.low)))


def scales(rows: list[Ranked]) -> dict[str, Scale]:
    """One scale per gated metric, shared by its series so their charts compare at a glance. It
    spans the thresholds and the CI ends between the 2nd and 98th percentiles, so one wild series
    is clipped at the edge instead of flattening every other chart, and a quarter of the span on
    both sides of each threshold, so a series past it shows how far."""
    ends: dict[str, list[float]] = {}
    bounds: dict[str, list[float]] = {}
    for row in rows:
        check = row.check
        if check is None:
            continue
        shown = [v for v in (*(check.ci or ()), check.statistic) if v is not None]
        ends.setdefault(check.name, []).extend(shown)
        bounds.setdefault(check.name, []).extend((check.threshold or {}).values())
    return {name: _scale(sorted(values), bounds[name]) for name, values in ends.items()}


def _scale(values: list[float], bounds: list[float]) -> Scale:
    last = len(values) - 1
    inner = [values[round(0.02 * last)], values[round(0.98 * last)]] if values else []
    points = inner + bounds
    if not points:
        return Scale(0.0, 1.0)
    low, high = min(points), max(points)
    span = high - low or abs(high) or 1.0
    low = min([low, *(bound - span / 4 for bound in bounds)])
    high = max([high, *(bound + span / 4 for bound in bounds)])
    return Scale(low, high)
