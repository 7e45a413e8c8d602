"""What a report reads: reports/<p>/gates.json, checked against the shipped schema and read as a
typed GatesReport, and what the evaluate stage left beside it (metrics, hold-out plots)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.gates.verdict import GatesReport
from modelops_ci.layout import Layout

PLOTS = ("roc", "precision_recall", "calibration", "residuals", "forecast")


@dataclass(frozen=True)
class Inputs:
    """What the pipeline's evaluate stage left beside gates.json (each optional)."""

    metrics: dict[str, Any]
    plots: dict[str, list[dict[str, Any]]]


def discover(root: Path) -> list[str]:
    return sorted(path.parent.name for path in (root / "reports").glob("*/gates.json"))


def load(path: Path) -> GatesReport:
    """gates.json, checked against the shipped schema: a report that is not one is refused."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no gates report: run the pipeline's gate stages first (`modelops-ci run`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the gates report ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): re-run the gate stages") from None
    validate(report, str(path))
    return GatesReport.from_json(report)


def validate(report: Any, source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = sorted(validator.iter_errors(report), key=lambda e: [str(p) for p in e.absolute_path])
    if problems:
        lines = [f"{source}: {_json_path(p.absolute_path)}: {p.message}" for p in problems[:10]]
        more = f"\n... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise UserError("not a valid gates report (schema spec/schemas/gates.json):\n" + "\n".join(lines) + more
                        + "\nre-run the gate stages (`modelops-ci run`) to rewrite it")


@cache
def schema() -> dict[str, Any]:
    text = resources.files("modelops_ci.spec").joinpath("schemas", "gates.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _json_path(parts: Iterable[str | int]) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return "$" + path


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
