"""Violations: every solution keeps its constraints, judged on the largest constraint, bound or
integrality violation recomputed from the formulation and the solution alone (optimize/check.py),
never on the solver's word. It fails when one exceeds `max` (default 1e-6), naming the scenario
and its most violated row; a run where no scenario has a solution cannot be evaluated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_ci.gates.decision import scenarios
from modelops_ci.gates.decision.scenarios import Results, Scenario, Solution
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

GATE = "violations"
DEFAULT_MAX = 1e-6


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    return assess(scenarios.read(ctx), float(settings.get("max", DEFAULT_MAX)))


def assess(results: Results, tolerance: float) -> GateResult:
    solved = results.solved()
    if not solved:
        raise CannotEvaluate(f"no scenario in {results.file} has a solution whose violations could "
                             f"be checked ({results.statuses}): see the feasibility gate",
                             details={"max": tolerance})
    checks = [judge(scenario, solution, tolerance) for scenario, solution in solved]
    scenario, solution = max(solved, key=lambda pair: pair[1].violation)
    largest = f"the largest recomputed violation over {len(solved)} solutions"
    return scenarios.summarize(
        GATE, checks, failed=f"solutions violate their constraints by more than {tolerance:.3g}",
        passed=f"{largest} is {solution.violation:.3g} ({scenario.name}), at most {tolerance:.3g}",
        statistic=solution.violation, threshold={"max": tolerance},
        details={"scenario": scenario.name, "worst_row": solution.worst_row})


def judge(scenario: Scenario, solution: Solution, tolerance: float) -> Check:
    where = f"worst row: {solution.worst_row}"
    if solution.worst_row is None:
        where = "in a variable's bounds or integrality: no row is violated"
    status: Status = "pass" if solution.violation <= tolerance else "fail"
    reason = f"{scenario.name} violates its constraints by {solution.violation:.3g} ({where})"
    return Check(scenario.name, status, reason, statistic=solution.violation,
                 threshold={"max": tolerance}, details={"worst_row": solution.worst_row})
