"""A decision model's formulation, turned into one problem per scenario.

The formulation is either a plug-in callable, `build(scenario: Scenario)`, returning a HiGHS model
(`highspy.Highs` or `HighsLp`) or a `Problem`; or an MPS/LP file, whose row and column bounds a
scenario may set by name (its rows: `row` or `column`, `lower`, `upper`). Whatever goes wrong in one
scenario (the callable raises, its data is refused) is that scenario's error: the others still build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.optimize.problem import Problem, from_highs

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Scenario:
    """What a formulation is built from: one scenario's rows, the tables every scenario shares
    (`data.inputs`, by name) and the spec's `model.params`."""

    name: str
    rows: pd.DataFrame
    inputs: dict[str, pd.DataFrame]
    params: dict[str, Any]


class ScenarioDataError(ValueError):
    """A scenario's data the formulation cannot use (raised by plug-ins; any exception counts)."""


def require_positive(frame: pd.DataFrame, columns: Iterable[str], where: str = "") -> None:
    """Refuse missing or non-positive values in `columns`, naming the first: for plug-ins whose model
    needs positive data (a demand, a capacity)."""
    for column in columns:
        if column not in frame.columns:
            raise ScenarioDataError(f"{where}no column '{column}'")
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(~(values > 0))
        if bad.size:
            shown = "missing" if np.isnan(values[bad[0]]) else f"{values[bad[0]]:g}"
            raise ScenarioDataError(f"{where}{column} is {shown} in row {int(bad[0]) + 1}: it must be positive")


def from_plugin(build: Callable[[Scenario], Any], scenario: Scenario) -> Problem:
    """The problem `build` makes of `scenario`; ScenarioDataError saying what it returned otherwise."""
    made = build(scenario)
    if isinstance(made, Problem):
        return made
    import highspy

    if isinstance(made, highspy.Highs):
        return from_highs(made.getLp(), scenario.name)
    if isinstance(made, highspy.HighsLp):
        return from_highs(made, scenario.name)
    raise ScenarioDataError(f"the formulation returned {type(made).__name__}, not a highspy.Highs, "
                            "highspy.HighsLp or modelops_ci Problem")


def with_bounds(problem: Problem, rows: pd.DataFrame) -> Problem:
    """A file formulation with a scenario's bounds set by name (`row` or `column`, `lower`, `upper`;
    a missing bound keeps the file's)."""
    changed = {name: np.array(getattr(problem, name), dtype=float)
               for name in ("row_lower", "row_upper", "col_lower", "col_upper")}
    for kind, names in (("row", problem.row_names), ("column", problem.col_names)):
        if kind not in rows.columns:
            continue
        index = {name: i for i, name in enumerate(names)}
        prefix = "row" if kind == "row" else "col"
        for record in rows[rows[kind].notna()].itertuples(index=False):
            name = str(getattr(record, kind))
            if name not in index:
                raise ScenarioDataError(f"the model has no {kind} '{name}'")
            for side in ("lower", "upper"):
                value = getattr(record, side, None)
                if value is not None and not _missing(value):
                    changed[f"{prefix}_{side}"][index[name]] = float(value)
    return replace(problem, row_lower=changed["row_lower"], row_upper=changed["row_upper"],
                   col_lower=changed["col_lower"], col_upper=changed["col_upper"])


def _missing(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)
