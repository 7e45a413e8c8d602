"""Solving a problem with OR-Tools (its model builder: SCIP for a mixed-integer program, GLOP for a
linear one), the alternative a spec names with `model.solver: ortools`.

OR-Tools 9.15 and highspy 1.15 crash when imported in one process. The problem reaches this module as
plain arrays (optimize/store.py), so the solve step of an OR-Tools spec never imports highspy: each
solver lives in its own stage's process (tests/integration/test_optimize_pipeline.py checks it).
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import numpy as np

from modelops_ci.optimize.problem import Problem
from modelops_ci.optimize.solve import Options, Solution, Status


def solve(problem: Problem, options: Options) -> Solution:
    from ortools.linear_solver.python import model_builder as mb

    model = mb.Model()  # type: ignore[no-untyped-call]
    columns = [model.new_var(lb=float(low), ub=float(high), is_integer=bool(integer), name=f"x{j}")
               for j, (low, high, integer) in enumerate(zip(problem.col_lower, problem.col_upper, problem.integer,
                                                            strict=True))]
    matrix = problem.matrix.tocsr()
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        terms = mb.LinearExpr.weighted_sum([columns[j] for j in matrix.indices[start:end]],
                                           matrix.data[start:end].tolist())
        model.add(mb.BoundedLinearExpression(terms, float(problem.row_lower[i]), float(problem.row_upper[i])))
    objective = mb.LinearExpr.weighted_sum(columns, problem.cost.tolist(), constant=problem.offset)
    if problem.maximise:
        model.maximize(objective)
    else:
        model.minimize(objective)
    solver = mb.Solver("scip" if problem.integer.any() else "glop")
    solver.set_time_limit_in_seconds(float(options.time_limit))
    solver.set_solver_specific_parameters(_parameters(problem, options))
    started = time.perf_counter()
    result = solver.solve(model)
    seconds = time.perf_counter() - started
    status = _status(mb, result)
    has_solution = result in (mb.SolveStatus.OPTIMAL, mb.SolveStatus.FEASIBLE)
    value = float(solver.objective_value) if has_solution else None
    bound = float(solver.best_objective_bound) if has_solution else None
    if status == "optimal" and not problem.integer.any():
        bound = value  # GLOP reports no bound: an LP's optimum is its own bound, as HiGHS says
    x = np.array([solver.value(c) for c in columns], dtype=float) if has_solution else None
    return Solution(status, solver.status_string or result.name, value, bound, _gap(value, bound), seconds, x,
                    f"ortools {metadata.version('ortools')}")


def _parameters(problem: Problem, options: Options) -> str:
    if not problem.integer.any():
        return f"random_seed:{int(options.seed)}"  # GLOP's text format
    return "\n".join([f"limits/gap = {float(options.mip_gap)}", f"randomization/randomseedshift = {int(options.seed)}",
                      f"parallel/maxnthreads = {int(options.threads)}"])


def _status(mb: Any, result: Any) -> Status:
    known: dict[Any, Status] = {mb.SolveStatus.OPTIMAL: "optimal", mb.SolveStatus.INFEASIBLE: "infeasible",
                                mb.SolveStatus.UNBOUNDED: "unbounded"}
    if result == mb.SolveStatus.FEASIBLE:
        return "time_limit"  # stopped with a solution short of proving it optimal: only a limit does that
    return known.get(result, "other")


def _gap(value: float | None, bound: float | None) -> float | None:
    """The relative gap as HiGHS defines it, |value - bound| / |value|, so both solvers' gaps compare."""
    if value is None or bound is None:
        return None
    return abs(value - bound) / max(abs(value), 1e-10)
