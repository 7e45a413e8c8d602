"""What the formats draw from a gate's details: the fairness gate's per-group rates and the lowest
rate its policy allows, and the drift checks worth a picture (the fields: see words.py)."""

from __future__ import annotations

from typing import Any

from modelops_ci.gates.result import Check, GateResult
from modelops_ci.report.words import drifted, p_value

PICTURES = ("histogram", "ecdf", "category_counts")


def group_rows(gate: GateResult) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The fairness gate's details.by_group, per (feature, metric), rows with a value only."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rows = gate.details.get("by_group")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("value"), int | float) and not isinstance(
                row.get("value"), bool):
            key = (str(row.get("feature", "")), str(row.get("metric", "selection_rate")))
            grouped.setdefault(key, []).append(row)
    return grouped


def included(row: dict[str, Any]) -> bool:
    """Whether the disparities compare this group (a group with too few rows is only shown)."""
    return row.get("included") is not False


def parity_floor(gate: GateResult, feature: str, metric: str, rows: list[dict[str, Any]]) -> float | None:
    """The lowest rate the policy's bounds allow a group, given the highest compared group's rate:
    ratio bound x highest for a `*_ratio` minimum, highest - bound for a `*_difference` maximum."""
    from modelops_ci.gates.fairness import RATES_OF

    compared = [float(r["value"]) for r in rows if included(r)]
    if not compared:
        return None
    highest, floors = max(compared), []
    for check in gate.checks:
        name, bound = str(check.details.get("metric") or ""), check.threshold or {}
        family, _, kind = name.rpartition("_")
        if check.details.get("feature") != feature or metric not in RATES_OF.get(family, ()):
            continue
        if kind == "ratio" and isinstance(bound.get("min"), int | float):
            floors.append(float(bound["min"]) * highest)
        elif kind == "difference" and isinstance(bound.get("max"), int | float):
            floors.append(highest - float(bound["max"]))
    return max(floors) if floors else None


def extremes(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """All rows if few; else the lowest and highest values, where disparities show."""
    if len(rows) <= count:
        return rows
    ordered = sorted(rows, key=lambda r: float(r["value"]))
    return ordered[: count // 2] + ordered[-(count - count // 2):]


def drift_pictured(gate: GateResult, most: int, quiet: int) -> list[Check]:
    """The checks to draw: the drifted features (at most `most`, smallest p-value first), else the
    `quiet` closest to drifting; then any other check with plot data (e.g. the model's scores)."""
    drawable = [c for c in gate.checks if any(k in c.details for k in PICTURES)]
    features = sorted((c for c in drawable if c.details.get("kind")), key=p_value)
    chosen = [c for c in features if drifted(c)][:most] or features[:quiet]
    return chosen + [c for c in drawable if not c.details.get("kind")]
