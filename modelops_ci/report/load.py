"""What a report reads: reports/<p>/gates.json, checked against the shipped schema and read as a
typed GatesReport, and what the evaluate stage left beside it (metrics, hold-out plots)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.layout import Layout

PLOTS = ("roc", "precision_recall", "calibration", "residuals", "forecast")


@dataclass(frozen=True)
class Inputs:
    """What the pipeline's evaluate stage left beside gates.json (each optional)."""

    metrics: dict[str, Any]
    plots: dict[str, list[dict[str, Any]]]


def discover(root: Path) -> list[str]:
    return sorted(path.parent.name for path in (root / "reports").glob("*/gates.json"))


def read_inputs(root: Path, layout: Layout) -> Inputs:
    metrics = _optional_json(root / layout.metrics)
    plots = {}
    for name in PLOTS:
        points = _optional_json(root / layout.plots / f"{name}.json")
        if isinstance(points, list) and all(isinstance(p, dict) for p in points):
            plots[name] = points
    return Inputs(metrics if isinstance(metrics, dict) else {}, plots)


def _optional_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}): re-run the pipeline's evaluate stage") from None
