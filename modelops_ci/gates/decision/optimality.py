"""Optimality: every solution is proven close to the best, its relative MIP gap at most `max_gap`
(default 1e-4; an LP solved to optimality has gap 0). A solution without a gap (the solver
reported no bound) cannot be judged: an error for that scenario. Whether each scenario has a
solution at all is the feasibility gate's question; a run where none has one cannot be evaluated."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.decision import scenarios
from modelops_ci.gates.decision.scenarios import Results, Scenario
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

GATE = "optimality"
DEFAULT_MAX_GAP = 1e-4


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    return assess(scenarios.read(ctx), float(settings.get("max_gap", DEFAULT_MAX_GAP)))


def assess(results: Results, max_gap: float) -> GateResult:
    solved = [scenario for scenario, _ in results.solved()]
    if not solved:
        raise CannotEvaluate(f"no scenario in {results.file} has a solution whose gap could be "
                             f"judged ({results.statuses}): see the feasibility gate",
                             details={"max_gap": max_gap})
    checks = [judge(scenario, max_gap) for scenario in solved]
    gaps = {scenario.name: scenario.gap for scenario in solved if scenario.gap is not None}
    widest = max(gaps, key=gaps.__getitem__, default="")  # none only when every check is an error
    largest = gaps.get(widest, math.nan)
    return scenarios.summarize(
        GATE, checks, failed=f"solutions are not proven within the gap {max_gap:.3g}",
        passed=f"the largest gap over {len(solved)} solutions is {largest:.3g} ({widest}), "
               f"at most {max_gap:.3g}",
        statistic=largest, threshold={"max_gap": max_gap}, details={"scenario": widest})


def judge(scenario: Scenario, max_gap: float) -> Check:
    bound = {"max_gap": max_gap}
    gap = scenario.gap
    if gap is None:
        reason = f"{scenario.name} has no gap: the solver reported no bound"
        return Check(scenario.name, "error", reason, threshold=bound)
    status: Status = "pass" if gap <= max_gap else "fail"
    reason = f"{scenario.name} has a gap of {gap:.3g}"
    if status == "fail":
        reason = f"{reason}, above {max_gap:.3g}"
    return Check(scenario.name, status, reason, statistic=gap, threshold=bound)
