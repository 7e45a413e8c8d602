"""Decision models' first parts (modelops_ci/optimize/): a formulation as arrays, solved by HiGHS,
and its solution's violations recomputed from the arrays alone; a solver's failure states."""

from __future__ import annotations

import itertools
from pathlib import Path

import highspy
import numpy as np
import pytest

from modelops_ci.errors import UserError
from modelops_ci.optimize.check import violations
from modelops_ci.optimize.problem import Problem, from_highs, read, to_highs
from modelops_ci.optimize.solve import Options, solve

OPENING = [10.0, 12.0, 9.0]  # a facility's fixed cost
SERVING = [[2.0, 4.0, 5.0, 3.0], [3.0, 1.0, 2.0, 4.0], [4.0, 3.0, 1.0, 2.0]]  # facility x customer


def facility_location() -> Problem:
    """Open facilities and assign each of 4 customers to one open facility, at the least cost."""
    model = highspy.Highs()
    model.silent()
    opened = [model.addBinary() for _ in OPENING]
    assign = [[model.addVariable(lb=0, ub=1) for _ in SERVING[0]] for _ in OPENING]
    for customer in range(len(SERVING[0])):
        model.addConstr(sum(assign[f][customer] for f in range(len(OPENING))) == 1)
        for f in range(len(OPENING)):
            model.addConstr(assign[f][customer] <= opened[f])
    model.minimize(sum(OPENING[f] * opened[f] for f in range(len(OPENING)))
                   + sum(SERVING[f][c] * assign[f][c] for f in range(len(OPENING)) for c in range(len(SERVING[0]))))
    return from_highs(model.getLp(), "facilities")


def brute_force() -> float:
    best = np.inf
    for pattern in itertools.product((0, 1), repeat=len(OPENING)):
        if any(pattern):
            serve = sum(min(SERVING[f][c] for f in range(len(OPENING)) if pattern[f]) for c in range(len(SERVING[0])))
            best = min(best, serve + sum(cost for cost, on in zip(OPENING, pattern, strict=True) if on))
    return best


def test_highs_finds_the_optimum_and_the_independent_check_finds_no_violation() -> None:
    problem = facility_location()
    found = solve(problem, Options(time_limit=10, seed=1, threads=2))
    assert solve(problem, Options(threads=1)).status == "optimal"  # another thread count, the same process
    assert (found.status, found.gap) == ("optimal", 0.0)
    assert found.objective == pytest.approx(brute_force()) == pytest.approx(found.bound)
    assert found.x is not None and problem.objective(found.x) == pytest.approx(found.objective)
    assert violations(problem, found.x).largest <= 1e-9
    assert found.solver == f"highs {highspy.Highs().version()}"  # the version solved with, for the evidence


def test_the_check_measures_every_kind_of_violation_itself() -> None:
    problem = facility_location()
    x = solve(problem).x
    assert x is not None
    broken = x.copy()
    served = len(OPENING) + int(np.flatnonzero(x[len(OPENING):] > 0.5)[0])  # one customer's assignment
    broken[served] = 0.0  # that customer is assigned nowhere: its "assigned once" row is short by 1
    found = violations(problem, broken)
    assert found.rows == pytest.approx(1.0) and found.worst_row is not None
    half = x.copy()
    half[0] = 0.5
    assert violations(problem, half).integrality == pytest.approx(0.5)
    over = x.copy()
    over[1] = 3.0
    assert violations(problem, over).bounds == pytest.approx(2.0)
    with pytest.raises(ValueError, match="a solution of 2 values for 15 variables"):
        violations(problem, np.zeros(2))


def _lp(rows: list[tuple[list[float], float, float]], cost: list[float], lower: float = 0.0) -> Problem:
    model = highspy.Highs()
    model.silent()
    xs = [model.addVariable(lb=lower) for _ in cost]
    for coefficients, low, high in rows:
        model.addConstr(low <= sum(a * x for a, x in zip(coefficients, xs, strict=True)) <= high)
    model.minimize(sum(c * x for c, x in zip(cost, xs, strict=True)))
    return from_highs(model.getLp())


def test_an_infeasible_or_unbounded_model_says_so_and_has_no_solution() -> None:
    infeasible = solve(_lp([([1.0, 1.0], 5.0, 5.0), ([1.0, 1.0], 7.0, 7.0)], [1.0, 1.0]))
    assert infeasible.status in ("infeasible", "infeasible_or_unbounded") and infeasible.x is None
    unbounded = solve(_lp([([1.0, -1.0], 0.0, 0.0)], [-1.0, -1.0]))
    assert unbounded.status in ("unbounded", "infeasible_or_unbounded") and unbounded.objective is None


def test_a_model_file_is_read_into_the_same_arrays_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    model = highspy.Highs()
    model.silent()
    model.passModel(to_highs(facility_location()))
    path = tmp_path / "facilities.mps"
    model.writeModel(str(path))
    again = read(path)
    original = facility_location()
    assert np.allclose(again.matrix.toarray(), original.matrix.toarray())
    assert np.array_equal(again.integer, original.integer) and np.allclose(again.cost, original.cost)
    assert solve(again).objective == pytest.approx(brute_force())
    garbage = tmp_path / "garbage.mps"
    garbage.write_text("this is not a model\n")
    with pytest.raises(UserError, match="not a model HiGHS can read"):
        read(garbage)
    with pytest.raises(UserError, match="no such model file"):
        read(tmp_path / "missing.mps")


def test_a_scenarios_result_holds_the_solvers_report_and_the_recomputed_violation() -> None:
    from dataclasses import replace

    from modelops_ci.optimize.evaluate import evaluate

    problem = facility_location()
    solution = solve(problem)
    result = evaluate("week-1", problem, solution)
    assert (result.scenario, result.status, result.gap) == ("week-1", "optimal", 0.0)
    assert result.objective == pytest.approx(solution.objective)  # recomputed from the decision
    assert result.violation is not None and result.violation <= 1e-9 and result.worst_row is None
    assert solution.x is not None
    lying = replace(solution, x=np.zeros_like(solution.x))  # "optimal", says the solver; nobody is served
    claimed = evaluate("week-1", problem, lying)
    assert claimed.status == "optimal" and claimed.violation == pytest.approx(1.0)
    assert claimed.objective == 0.0  # the decision's own cost, not the solver's word for it
    assert claimed.worst_row is not None and claimed.worst_row.startswith(("row ", "r"))
    none = evaluate("week-2", problem, replace(solution, x=None, status="infeasible", objective=None))
    assert (none.violation, none.worst_row) == (None, None)
    assert set(result.to_json()) == {"scenario", "expected", "status", "said", "objective", "bound", "gap", "seconds",
                                     "violation", "worst_row", "solver", "error"}
