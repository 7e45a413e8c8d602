"""A solution's violations, recomputed from the problem's arrays and the solution alone (the
solver's own report is not trusted): how far each row's activity A x falls outside its bounds,
each variable outside its bounds, and each integer variable from the nearest integer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelops_ci.optimize.problem import Problem


@dataclass(frozen=True)
class Violations:
    rows: float  # the largest row violation (absolute)
    bounds: float  # the largest variable-bound violation
    integrality: float  # the largest distance of an integer variable from an integer
    worst_row: int | None = None  # where `rows` is, when positive

    @property
    def largest(self) -> float:
        return max(self.rows, self.bounds, self.integrality)


def violations(problem: Problem, x: np.ndarray) -> Violations:
    x = np.asarray(x, dtype=float)
    if x.shape != (problem.shape[1],):
        raise ValueError(f"a solution of {x.shape[0] if x.ndim == 1 else x.shape} values for {problem.shape[1]} "
                         "variables")
    activity = problem.matrix @ x
    row_gap = np.maximum(problem.row_lower - activity, activity - problem.row_upper)
    bound_gap = np.maximum(problem.col_lower - x, x - problem.col_upper)
    integer = x[problem.integer]
    worst = float(row_gap.max(initial=0.0))
    return Violations(max(0.0, worst), max(0.0, float(bound_gap.max(initial=0.0))),
                      float(np.abs(integer - np.round(integer)).max(initial=0.0)),
                      int(np.argmax(row_gap)) if worst > 0 else None)
