"""What the formats draw from a gate's details: the fairness gate's per-group rates and the lowest
rate its policy allows, and the drift checks worth a picture (the fields: see words.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelops_ci.gates.result import Check, GateResult
from modelops_ci.report.format import estimate_with_ci, num, percent, plain_group
from modelops_ci.report.words import adverse_views, bare_group, drifted, p_value

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


ADVERSE_SUMMARY_HEADER = ("Disparity", "Model", "Data (labels)")
ADVERSE_GROUP_HEADER = ("Group", "n", "Rate: model", "Rate: data", "Odds ratio: model", "Odds ratio: data")


@dataclass(frozen=True)
class AdverseTable:
    """One view's adverse-outcome figures as text cells (unescaped): the disparities on the model
    and on the labels side by side, and the groups' rates and odds ratios."""

    caption: str
    summary: list[tuple[str, str, str]]
    groups: Sequence[tuple[str, ...]]
    left_out: int  # groups not shown


def adverse_tables(gate: GateResult, most_groups: int) -> list[AdverseTable]:
    outcome, views = adverse_views(gate)
    confidence = gate.details.get("adverse", {}).get("confidence")
    level = f"{confidence:.0%} " if isinstance(confidence, float) else ""
    tables = []
    for view in views:
        model, labels, feature = view["model"], view["labels"], str(view.get("name", ""))

        def shown(label: Any, feature: str = feature) -> str:
            return plain_group(bare_group(str(label), feature))

        reference = shown(view.get("reference_group", ""))
        caption = (f"{view.get('name')}: “{outcome}” by group, by the model and in the data (the labels); "
                   f"odds ratios against {reference} (lowest rate in the data), {level}Woolf CI")
        summary = [(title, cell(model, shown), cell(labels, shown)) for title, cell in _ADVERSE_ROWS]
        rows = [row for row in view.get("groups") or [] if isinstance(row, dict)]
        groups = [(shown(r.get("group", "")), f"{r.get('n', '')}", percent(r.get("model_adverse_rate")),
                   percent(r.get("labels_adverse_rate")),
                   estimate_with_ci(r.get("model_odds_ratio"), r.get("model_odds_ratio_ci")) if "model_odds_ratio"
                   in r else "reference",
                   estimate_with_ci(r.get("labels_odds_ratio"), r.get("labels_odds_ratio_ci")) if "labels_odds_ratio"
                   in r else "reference") for r in rows[:most_groups]]
        tables.append(AdverseTable(caption, summary, groups, max(0, len(rows) - most_groups)))
    return tables


def _odds(figures: dict[str, Any], shown: Callable[[Any], str]) -> str:
    group = shown(figures.get("odds_ratio_group", ""))
    return f"{estimate_with_ci(figures.get('odds_ratio'), figures.get('odds_ratio_ci'))}, {group}"


_ADVERSE_ROWS: list[tuple[str, Callable[[dict[str, Any], Callable[[Any], str]], str]]] = [
    ("adverse rate ratio (highest / lowest)", lambda f, _: num(f.get("adverse_rate_ratio"))),
    ("adverse rate difference", lambda f, _: num(f.get("adverse_rate_difference"))),
    ("favourable rate ratio (lowest / highest)", lambda f, _: num(f.get("favourable_rate_ratio"))),
    ("favourable rate difference", lambda f, _: num(f.get("favourable_rate_difference"))),
    ("largest odds ratio of the adverse outcome (CI), group", _odds),
]
