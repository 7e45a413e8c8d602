"""A linear or mixed-integer program as plain arrays, whatever built it:

    minimise (or maximise)  c·x + offset
    subject to              row_lower <= A x <= row_upper
                            col_lower <= x <= col_upper,  x_j integer where `integer[j]`

Read from an MPS or LP file (HiGHS's reader) or taken from a HiGHS model a formulation built. The
checker (optimize/check.py) recomputes a solution's violations from these arrays alone, so it does
not depend on what the solver reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelops_ci.errors import UserError


@dataclass(frozen=True)
class Problem:
    name: str
    maximise: bool
    cost: np.ndarray  # c
    offset: float
    matrix: Any  # scipy.sparse.csr_matrix, rows x columns
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray  # bool per column
    col_names: tuple[str, ...] = ()
    row_names: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        rows, columns = self.matrix.shape
        return int(rows), int(columns)

    def objective(self, x: np.ndarray) -> float:
        return float(self.cost @ x + self.offset)


def from_highs(lp: Any, name: str = "") -> Problem:
    """The arrays of a `highspy.HighsLp` (`Highs().getLp()`)."""
    import highspy
    from scipy import sparse

    matrix = lp.a_matrix_
    shape = (int(lp.num_row_), int(lp.num_col_))
    parts = (np.asarray(matrix.value_, dtype=float), np.asarray(matrix.index_, dtype=np.int64),
             np.asarray(matrix.start_, dtype=np.int64))
    columnwise = matrix.format_ == highspy.MatrixFormat.kColwise
    built = (sparse.csc_matrix(parts, shape=shape) if columnwise else sparse.csr_matrix(parts, shape=shape)).tocsr()
    integrality = list(lp.integrality_) or [highspy.HighsVarType.kContinuous] * shape[1]
    integer = np.array([kind == highspy.HighsVarType.kInteger for kind in integrality], dtype=bool)
    return Problem(name or str(lp.model_name_), lp.sense_ == highspy.ObjSense.kMaximize,
                   np.asarray(lp.col_cost_, dtype=float), float(lp.offset_), built,
                   np.asarray(lp.row_lower_, dtype=float), np.asarray(lp.row_upper_, dtype=float),
                   np.asarray(lp.col_lower_, dtype=float), np.asarray(lp.col_upper_, dtype=float), integer,
                   tuple(lp.col_names_), tuple(lp.row_names_))


def to_highs(problem: Problem) -> Any:
    """The problem as a `highspy.HighsLp`, to pass to a solver or write to a file."""
    import highspy

    lp = highspy.HighsLp()
    rows, columns = problem.shape
    lp.num_row_, lp.num_col_ = rows, columns
    lp.sense_ = highspy.ObjSense.kMaximize if problem.maximise else highspy.ObjSense.kMinimize
    lp.offset_ = problem.offset
    lp.col_cost_ = problem.cost
    lp.col_lower_, lp.col_upper_ = problem.col_lower, problem.col_upper
    lp.row_lower_, lp.row_upper_ = problem.row_lower, problem.row_upper
    compressed = problem.matrix.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = compressed.indptr
    lp.a_matrix_.index_ = compressed.indices
    lp.a_matrix_.value_ = compressed.data
    if problem.integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
                           for flag in problem.integer]
    return lp


def read(path: Path) -> Problem:
    """An MPS or LP file; UserError naming it when HiGHS cannot read it."""
    import highspy

    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    solver = highspy.Highs()
    solver.silent()
    if solver.readModel(str(path)) != highspy.HighsStatus.kOk:
        raise UserError(f"{path}: not a model HiGHS can read (an MPS or LP file)")
    return from_highs(solver.getLp(), path.stem)
