"""Solving a problem with HiGHS (`highspy`), the default solver: the options a spec names (time
limit, relative gap, threads, seed), and what the solver says: its status, objective, best bound,
gap, time and solution. What it says of feasibility is checked apart (optimize/check.py).

HiGHS runs in this process. OR-Tools 9.15 and highspy 1.15 crash when imported in one process, so
each solver runs in the step process of its own stage, never in one that imports the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

import numpy as np

from modelops_ci.optimize.problem import Problem, to_highs

Status = Literal["optimal", "infeasible", "unbounded", "infeasible_or_unbounded", "time_limit", "other"]


@dataclass(frozen=True)
class Options:
    time_limit: float = 60.0  # seconds
    mip_gap: float = 1e-4  # relative
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Solution:
    status: Status
    said: str  # the solver's own words for it
    objective: float | None
    bound: float | None  # the best bound (a MIP's dual bound; an LP's objective at optimality)
    gap: float | None  # relative
    seconds: float
    x: np.ndarray | None
    solver: str

    def to_json(self) -> dict[str, Any]:
        """What the solver said, without the values (kept in a table: the decision)."""
        return {"status": self.status, "said": self.said, "objective": self.objective, "bound": self.bound,
                "gap": self.gap, "seconds": self.seconds, "solver": self.solver}

    @classmethod
    def from_json(cls, said: dict[str, Any], x: np.ndarray | None) -> Solution:
        return cls(said["status"], str(said["said"]), _number(said.get("objective")), _number(said.get("bound")),
                   _number(said.get("gap")), float(said["seconds"]), x, str(said["solver"]))


def solve(problem: Problem, options: Options = Options()) -> Solution:
    import highspy

    # The thread count is the process-wide scheduler's: HiGHS 1.16 refuses to run (status "Not Set")
    # when it differs from the count the scheduler started with, so the scheduler starts again.
    highspy.Highs.resetGlobalScheduler(True)
    solver = highspy.Highs()
    solver.silent()
    for name, value in (("time_limit", float(options.time_limit)), ("mip_rel_gap", float(options.mip_gap)),
                        ("threads", int(options.threads)), ("random_seed", int(options.seed))):
        solver.setOptionValue(name, value)
    solver.passModel(to_highs(problem))
    solver.run()
    model_status = solver.getModelStatus()
    status = _status(highspy, model_status)
    info = solver.getInfo()
    # a feasible point of an unbounded or infeasible model is no answer to it
    has_solution = info.primal_solution_status == 2 and status not in ("infeasible", "unbounded",
                                                                       "infeasible_or_unbounded")
    x = np.asarray(solver.getSolution().col_value, dtype=float) if has_solution else None
    objective = float(info.objective_function_value) if has_solution else None
    bound = _finite(info.mip_dual_bound) if problem.integer.any() else objective if status == "optimal" else None
    gap = _finite(info.mip_gap) if problem.integer.any() else 0.0 if status == "optimal" else None
    return Solution(status, solver.modelStatusToString(model_status), objective, bound, gap,
                    float(solver.getRunTime()), x, f"highs {metadata.version('highspy')}")



def _status(highspy: Any, status: Any) -> Status:
    known: dict[Any, Status] = {highspy.HighsModelStatus.kOptimal: "optimal",
                                highspy.HighsModelStatus.kInfeasible: "infeasible",
                                highspy.HighsModelStatus.kUnbounded: "unbounded",
                                highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
                                highspy.HighsModelStatus.kTimeLimit: "time_limit"}
    return known.get(status, "other")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
