"""Every scenario's problem in one `.npz` file of plain arrays, written by the build step and read by
solve, evaluate and the server. Nothing in it is a pickle (`allow_pickle=False` both ways): names are
unicode arrays, the matrix its CSR parts. A scenario the formulation could not build keeps its reason
in place of its arrays, so the other scenarios still solve."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelops_ci.errors import UserError
from modelops_ci.fsutil import replacing
from modelops_ci.optimize.problem import Problem

_ARRAYS = ("cost", "row_lower", "row_upper", "col_lower", "col_upper", "integer")


@dataclass(frozen=True)
class Built:
    """One scenario as the build step left it: its problem, or why there is none."""

    scenario: str
    problem: Problem | None
    error: str | None = None


def save(path: Path, built: list[Built]) -> None:
    arrays: dict[str, np.ndarray] = {
        "scenarios": np.array([b.scenario for b in built], dtype=str),
        "errors": np.array([b.error or "" for b in built], dtype=str),
    }
    named: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}  # names -> the scenario that stores them
    for index, item in enumerate(built):
        if item.problem is not None:
            names = (item.problem.col_names, item.problem.row_names)
            owner = named.setdefault(names, index)
            arrays.update(_arrays(f"{index}.", item.problem, owner))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    with replacing(path) as temp:
        temp.write_bytes(buffer.getvalue())


def load(path: Path) -> list[Built]:
    """The scenarios as built; a UserError naming the file when it is missing or not ours."""
    if not path.is_file():
        raise UserError(f"{path}: not found: run the build step first")
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = dict(stored.items())
        return [_built(found, index, str(name), str(error))
                for index, (name, error) in enumerate(zip(found["scenarios"], found["errors"], strict=True))]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a problems file of the build step ({exc}): run the pipeline again") from None


def _arrays(prefix: str, problem: Problem, names_of: int) -> dict[str, np.ndarray]:
    """One problem's arrays; its row and column names only when no earlier scenario has the same
    (one formulation's scenarios usually share them: 40% of the file when each kept its own)."""
    matrix = problem.matrix.tocsr()
    arrays = {prefix + name: np.asarray(getattr(problem, name)) for name in _ARRAYS}
    arrays.update({prefix + "data": matrix.data, prefix + "indices": matrix.indices, prefix + "indptr": matrix.indptr,
                   prefix + "shape": np.array(matrix.shape, dtype=np.int64),
                   prefix + "meta": np.array([problem.name, "max" if problem.maximise else "min"], dtype=str),
                   prefix + "offset": np.array([problem.offset], dtype=float),
                   prefix + "names_of": np.array([names_of], dtype=np.int64)})
    if prefix == f"{names_of}.":
        arrays.update({prefix + "col_names": np.array(problem.col_names, dtype=str),
                       prefix + "row_names": np.array(problem.row_names, dtype=str)})
    return arrays


def _built(found: dict[str, np.ndarray], index: int, scenario: str, error: str) -> Built:
    if error:
        return Built(scenario, None, error)
    from scipy import sparse

    prefix = f"{index}."
    names = f"{int(found[prefix + 'names_of'][0])}."
    name, sense = (str(v) for v in found[prefix + "meta"])
    matrix = sparse.csr_matrix((found[prefix + "data"], found[prefix + "indices"], found[prefix + "indptr"]),
                               shape=tuple(int(v) for v in found[prefix + "shape"]))
    return Built(scenario, Problem(
        name, sense == "max", found[prefix + "cost"], float(found[prefix + "offset"][0]), matrix,
        found[prefix + "row_lower"], found[prefix + "row_upper"], found[prefix + "col_lower"],
        found[prefix + "col_upper"], found[prefix + "integer"].astype(bool),
        tuple(str(v) for v in found[names + "col_names"]), tuple(str(v) for v in found[names + "row_names"])))
