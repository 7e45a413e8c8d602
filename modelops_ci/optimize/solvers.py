"""The solvers a spec may name (`model.solver`), each imported only in the process that solves with it:
OR-Tools 9.15 and highspy 1.15 crash when imported in one process (optimize/ortools_solve.py)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata

from modelops_ci.errors import MissingDependencyError
from modelops_ci.optimize.problem import Problem
from modelops_ci.optimize.solve import Options, Solution


@dataclass(frozen=True)
class Solver:
    module: str  # ours, with `solve(problem, options) -> Solution`
    distribution: str  # the PyPI package that brings the solver


SOLVERS = {
    "highs": Solver("modelops_ci.optimize.solve", "highspy"),
    "ortools": Solver("modelops_ci.optimize.ortools_solve", "ortools"),
}


def version(name: str) -> str:
    """`NAME VERSION` of an installed solver, read from its distribution's metadata (not imported)."""
    return installed(SOLVERS[name], name)


def installed(solver: Solver, name: str) -> str:
    distribution = solver.distribution
    try:
        return f"{name} {metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(f"the solver '{name}' is not installed: pip install {distribution} "
                                     "(or name another solver in model.solver)") from None


def solve(name: str, problem: Problem, options: Options) -> Solution:
    version(name)
    solution: Solution = importlib.import_module(SOLVERS[name].module).solve(problem, options)
    return solution
