"""Feasibility: each scenario ends as its spec expects.

A scenario expected optimal (the default) must be `optimal`, or have stopped at the time limit
with a solution whose gap is at most `max_gap` (default: the gap the solver was asked for, the
file's `mip_gap`): feasible within the gap. A scenario expected infeasible must be `infeasible`: a
solution to it means the model lost a constraint. A scenario that could not be built or solved is
an error of the gate, which blocks, with the scenario's reason.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.decision import scenarios
from modelops_ci.gates.decision.scenarios import Results, Scenario
from modelops_ci.gates.result import Check, GateResult, Status

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

GATE = "feasibility"
PASSED = {"optimal": "optimal", "time_limit": "feasible within the gap at the time limit",
          "infeasible": "infeasible as expected"}  # a passing scenario's status, in words
OPTIMAL_EXPECTED = "where an optimal solution is expected"


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    results = scenarios.read(ctx)
    return assess(results, float(settings.get("max_gap", results.mip_gap)))


def assess(results: Results, max_gap: float) -> GateResult:
    checks = [judge(scenario, max_gap) for scenario in results.scenarios]
    passing = Counter(check.details["status"] for check in checks if check.status == "pass")
    counted = ", ".join(f"{count} {PASSED[status]}" for status, count in passing.items())
    result = scenarios.summarize(
        GATE, checks, failed="scenarios did not end as expected",
        passed=f"all {len(checks)} scenarios ended as expected: {counted}",
        threshold={"max_gap": max_gap}, details={"passed": dict(passing)})
    result.details = {"max_gap": max_gap, "solver": results.solver, "statuses": results.statuses}
    return result


def judge(scenario: Scenario, max_gap: float) -> Check:
    name = scenario.name
    if scenario.status == "error":
        return _check(scenario, "error", f"{name} {scenario.described}")
    if scenario.expected == "infeasible":
        return _stays_infeasible(scenario)
    if scenario.status == "optimal":
        return _check(scenario, "pass", f"{name} is optimal")
    if scenario.status == "time_limit" and scenario.solution is not None:
        return _within_gap(scenario, max_gap)
    return _check(scenario, "fail", f"{name} {scenario.described}, {OPTIMAL_EXPECTED}")


def _stays_infeasible(scenario: Scenario) -> Check:
    name = scenario.name
    if scenario.status == "infeasible":
        return _check(scenario, "pass", f"{name} is infeasible, as expected")
    if scenario.solution is not None:
        found = f"{name} has a solution (objective {scenario.solution.objective:.6g})"
        lost = "where it must be infeasible: the model lost a constraint"
        return _check(scenario, "fail", f"{found} {lost}")
    unproven = f"{name} {scenario.described}, where it must be proven infeasible"
    return _check(scenario, "fail", unproven)


def _within_gap(scenario: Scenario, max_gap: float) -> Check:
    stopped = f"{scenario.name} stopped at the time limit"
    gap = scenario.gap
    if gap is None:
        unknown = f"{stopped} with no bound (the solver reported no gap)"
        return _check(scenario, "fail", f"{unknown}: it is not known to be within {max_gap:.3g}")
    if gap > max_gap:
        above = f"{stopped} with a gap of {gap:.3g}, above {max_gap:.3g}"
        return _check(scenario, "fail", above, statistic=gap)
    within = f"{stopped}, feasible within the gap ({gap:.3g})"
    return _check(scenario, "pass", within, statistic=gap)


def _check(scenario: Scenario, status: Status, reason: str, **fields: Any) -> Check:
    details = {"status": scenario.status, "expected": scenario.expected}
    return Check(scenario.name, status, reason, details=details, **fields)
