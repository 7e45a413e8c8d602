"""solve (task: optimize): each built scenario with the spec's solver and options. The decisions (every
variable's value) go to a table, what the solver said to a JSON file; evaluate judges both apart.

The problems arrive as arrays, so this process imports only the solver the spec names (OR-Tools and
highspy crash when imported in one process: optimize/ortools_solve.py)."""

from __future__ import annotations

from typing import Any

from modelops_ci.errors import MissingDependencyError
from modelops_ci.optimize import solvers, store
from modelops_ci.optimize.solve import Options, Solution
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.decision.build import DEFAULT_SOLVER
from modelops_ci.steps.frames import write_parquet


def options_of(model: dict[str, Any]) -> Options:
    given = model.get("options") or {}
    return Options(**{key: given[key] for key in ("time_limit", "mip_gap", "threads", "seed") if key in given})


def run(ctx: StepContext) -> dict[str, Any]:
    model = ctx.params["model"]
    solver = str(model.get("solver", DEFAULT_SOLVER))
    named = solvers.version(solver)  # not installed: exit 2 naming the package, before any work
    options = options_of(model)
    said: list[dict[str, Any]] = []
    decisions: list[Any] = []
    for item in store.load(ctx.path(ctx.layout.problems)):
        record, decision = solve_one(solver, item, options)
        said.append(record)
        decisions.append(decision)
    write_parquet(_table(decisions), ctx.path(ctx.layout.solutions))
    ctx.write_json(ctx.layout.solved, {"solver": named, "scenarios": said})
    return {"scenarios": len(said), "solved": sum(1 for s in said if s.get("objective") is not None)}


def solve_one(solver: str, item: store.Built, options: Options) -> tuple[dict[str, Any], Any]:
    """What the solver said of one scenario, and its decision as (scenario, variable, value) columns."""
    import pandas as pd

    record: dict[str, Any] = {"scenario": item.scenario}
    if item.problem is None:
        return {**record, "error": item.error}, None
    try:
        solution = solvers.solve(solver, item.problem, options)
    except MissingDependencyError:
        raise
    except Exception as exc:  # the solver's own failure on this scenario: the others still solve
        return {**record, "error": f"the solver failed: {type(exc).__name__}: {exc}"}, None
    record.update(solution.to_json())
    if solution.x is None:
        return record, None
    names = item.problem.col_names if any(item.problem.col_names) else tuple(f"x{j}" for j in range(len(solution.x)))
    return record, pd.DataFrame({"scenario": item.scenario, "variable": list(names), "value": solution.x})


def _table(decisions: list[Any]) -> Any:
    import pandas as pd

    present = [d for d in decisions if d is not None]
    if not present:
        return pd.DataFrame({"scenario": pd.Series(dtype=str), "variable": pd.Series(dtype=str),
                             "value": pd.Series(dtype=float)})
    return pd.concat(present, ignore_index=True)


def solution_of(record: dict[str, Any], values: Any) -> Solution | None:
    """A scenario's solution read back from solved.json and the decisions' values (None: an error)."""
    if "status" not in record:
        return None
    return Solution.from_json(record, values)
