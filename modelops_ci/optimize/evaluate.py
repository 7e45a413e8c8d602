"""One scenario's result, independent of the solver's word where it can be: the objective and the
violations recomputed from the formulation and the solution (optimize/check.py); the solver's status,
best bound, gap and time as it reported them. What the decision gates judge, per scenario."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelops_ci.optimize.check import violations
from modelops_ci.optimize.problem import Problem
from modelops_ci.optimize.solve import Solution, Status

Expected = Literal["optimal", "infeasible"]


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    status: Status | Literal["error"]  # error: the scenario could not be built or solved (`error` says why)
    said: str  # the solver's own words
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    violation: float | None  # the largest recomputed violation; None without a solution
    worst_row: str | None  # the row it is in, by name when the formulation names its rows
    solver: str
    expected: Expected = "optimal"
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "expected": self.expected, "status": self.status, "said": self.said,
                "objective": self.objective, "bound": self.bound, "gap": self.gap, "seconds": self.seconds,
                "violation": self.violation, "worst_row": self.worst_row, "solver": self.solver, "error": self.error}


def failed(scenario: str, reason: str, solver: str, expected: Expected = "optimal") -> ScenarioResult:
    """A scenario that could not be built or solved, with the plain reason."""
    return ScenarioResult(scenario, "error", "", None, None, None, 0.0, None, None, solver, expected, reason)


def evaluate(scenario: str, problem: Problem, solution: Solution, expected: Expected = "optimal") -> ScenarioResult:
    violation: float | None = None
    worst: str | None = None
    objective = solution.objective
    if solution.x is not None:
        objective = problem.objective(solution.x)  # the decision's own cost, not the solver's word for it
        found = violations(problem, solution.x)
        violation = found.largest
        if found.worst_row is not None:
            names = problem.row_names
            worst = names[found.worst_row] if found.worst_row < len(names) and names[found.worst_row] \
                else f"row {found.worst_row}"
    return ScenarioResult(scenario, solution.status, solution.said, objective, solution.bound, solution.gap,
                          solution.seconds, violation, worst, solution.solver, expected)
