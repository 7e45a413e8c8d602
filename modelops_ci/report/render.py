"""`modelops-ci report`: gates.json rendered for people, as reports/<p>/report.md (PR comment, job
summary), reports/<p>/report.html (self-contained, with plots) and a repo-level reports/summary.md.

This module says *what* a report says — the verdict in plain words, then the statistics — and
writes the files; markdown.py and html.py say it in their format. Plain words come first so a
business owner can read the verdict without statistics.

What the reports draw, beyond the fields every gate has (see spec/schemas/gates.json):

fairness gate
  details.by_group: [{"feature", "group", "metric", "value", "ci": [low, high] | null, "n"}]
      one row per group of a sensitive feature (or an intersection, e.g. feature "Marital & age_band")
      and per-group metric ("selection_rate", "true_positive_rate", "false_positive_rate"):
      drawn as bars with CI error bars.
  details.outcome (optional): what a positive prediction does to a person, as a verb phrase that
      takes the group as object, e.g. "approves" or 'predicts "bad" for'.
  checks: one per disparity metric and feature, statistic = the disparity, threshold = the policy
      bound, details = {"metric": "demographic_parity_ratio", "feature", "worst_group", "best_group"}.
drift gate
  details.max_drifted_share (optional): the policy's dataset-level share rule.
  checks: one per feature (name = column) with details.kind "numeric" | "categorical", details.test
      ("ks", "chi2", ...), details.drifted (bool; else warn/fail counts as drifted), and for the plots
      one of (counts or shares, as the drift gate has them; a dozen to a few dozen points is plenty):
        "histogram": {"edges": [k+1 numbers], "reference": [k counts], "current": [k counts]}
        "ecdf": {"x": [m increasing numbers], "reference": [m shares of rows <= x], "current": [m]}
        "category_counts": {"labels": [k names], "reference": [k counts], "current": [k counts]}
      drawn as overlaid distributions and ECDFs (numeric) or side-by-side shares (categorical),
      drifted features first; other checks (e.g. "prediction") may carry a histogram or ecdf too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.layout import Layout

PLOTS = ("roc", "precision_recall", "calibration", "residuals", "forecast")
GATE_TITLES = {"data_contract": "Data contract", "performance": "Performance",
               "compare": "Champion vs challenger", "fairness": "Fairness", "drift": "Drift"}
SEVERITY = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
MAX_SENTENCE = 600
MAX_LISTED = 3


@dataclass(frozen=True)
class Finding:
    """What one gate found, in plain words (unescaped: each format escapes it)."""

    gate: str
    status: str
    advisory: bool
    text: str

    @property
    def blocks(self) -> bool:
        return not self.advisory and self.status in ("fail", "error")

    @property
    def title(self) -> str:
        return gate_title(self.gate)


@dataclass(frozen=True)
class Inputs:
    """What the pipeline's evaluate stage left beside gates.json (each optional)."""

    metrics: dict[str, Any]
    plots: dict[str, list[dict[str, Any]]]


def render_reports(root: Path, pipelines: Iterable[str] = (), *, generated: str | None = None) -> list[Path]:
    """Write report.md and report.html for each pipeline (default: every reports/*/gates.json)
    and reports/summary.md over them; return the written paths.

    `generated` (e.g. a timestamp or commit) is printed in the footers; without it the output
    depends on the inputs only, so an unchanged pipeline renders byte-identical reports.
    """
    from modelops_ci.fsutil import write_atomic
    from modelops_ci.report.html import render as html_page
    from modelops_ci.report.markdown import render as markdown_page
    from modelops_ci.report.markdown import summary as markdown_summary

    names = list(pipelines) or discover(root)
    if not names:
        raise UserError("no reports/<pipeline>/gates.json to render: run the pipelines first (`modelops-ci run`)")
    written: list[Path] = []
    reports = []
    for name in names:
        layout = Layout(name)
        report = load(root / layout.gates)
        inputs = read_inputs(root, layout)
        reports.append(report)
        for path, text in ((root / layout.reports / "report.md", markdown_page(report, generated=generated)),
                           (root / layout.reports / "report.html", html_page(report, inputs, generated=generated))):
            write_atomic(path, text)
            written.append(path)
    summary = root / "reports" / "summary.md"
    write_atomic(summary, markdown_summary(reports, generated=generated))
    written.append(summary)
    return written


def discover(root: Path) -> list[str]:
    return sorted(path.parent.name for path in (root / "reports").glob("*/gates.json"))


def load(path: Path) -> dict[str, Any]:
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
    checked: dict[str, Any] = report
    return checked


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


# --- plain words -------------------------------------------------------------------------------


def gate_title(kind: str) -> str:
    return GATE_TITLES.get(kind, kind.replace("_", " ").capitalize())


def findings(report: dict[str, Any]) -> list[Finding]:
    return [Finding(g["gate"], g["status"], bool(g.get("advisory")), clip(plain_gate(g), MAX_SENTENCE))
            for g in report["gates"]]


def headline(report: dict[str, Any]) -> str:
    """The verdict as a business owner reads it, e.g. `Not ready for production: ...`."""
    found = findings(report)
    if report["verdict"] != "pass":
        blocking = [f for f in found if f.blocks]
        return f"Not ready for production: {blocking[0].text if blocking else clip(report['reason'], MAX_SENTENCE)}"
    if not found:
        return "Ready for production: no gates are required for this pipeline, so nothing was checked"
    to_review = sum(f.status != "pass" for f in found)
    note = f" ({to_review} advisory finding{'s' if to_review > 1 else ''} to review)" if to_review else ""
    gates = "its one required gate" if len(found) == 1 else f"all {len(found)} required gates"
    return f"Ready for production: {gates} passed{note}"


def because(report: dict[str, Any]) -> str:
    """The headline without its verdict, as a sentence: `The model approves ...`."""
    reason = headline(report).split(": ", 1)[-1]
    return reason[:1].upper() + reason[1:]


def verdict_title(report: dict[str, Any]) -> str:
    return "Ready for production" if report["verdict"] == "pass" else "Not ready for production"


def plain_gate(gate: dict[str, Any]) -> str:
    """One sentence about what the gate found, without statistics jargon."""
    if gate["status"] == "error":
        return f"the {gate_title(gate['gate']).lower()} check could not be run: {gate['reason']}"
    phrase = _PHRASES.get(gate["gate"], _generic)
    return phrase(gate)


def ordered_checks(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """Worst first, otherwise as the gate listed them."""
    checks: list[dict[str, Any]] = gate.get("checks") or []
    return sorted(checks, key=lambda c: -SEVERITY[c["status"]])


def _listed(sentences: list[str]) -> str:
    more = len(sentences) - MAX_LISTED
    return "; ".join(sentences[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def _chosen(gate: dict[str, Any]) -> list[dict[str, Any]]:
    checks = ordered_checks(gate)
    return [c for c in checks if c["status"] != "pass"] or checks


def _generic(gate: dict[str, Any]) -> str:
    failing = [c for c in ordered_checks(gate) if c["status"] != "pass"]
    return _listed([c["reason"] for c in failing]) if failing else str(gate["reason"])


def _performance(gate: dict[str, Any]) -> str:
    from modelops_ci.gates.performance import LABELS

    def sentence(check: dict[str, Any]) -> str:
        bound, stat = check.get("threshold") or {}, check.get("statistic")
        low, high = check.get("ci") or (None, None)
        label = LABELS.get(check["name"], check["name"])
        if check["status"] == "error" or stat is None:
            return str(check["reason"])
        if "min" in bound:
            if check["status"] == "pass":
                return f"{label} is reliably at least {bound['min']:g} (measured {num(stat)})"
            return f"{label} may be below the required {bound['min']:g} (measured {num(stat)}, " \
                   f"possibly as low as {num(low)})"
        if "max" in bound:
            if check["status"] == "pass":
                return f"{label} is reliably at most {bound['max']:g} (measured {num(stat)})"
            return f"{label} may be above the allowed {bound['max']:g} (measured {num(stat)}, " \
                   f"possibly as high as {num(high)})"
        return str(check["reason"])

    chosen = _chosen(gate)
    return _listed([sentence(c) for c in chosen]) if chosen else str(gate["reason"])


def _fairness(gate: dict[str, Any]) -> str:
    outcome = str((gate.get("details") or {}).get("outcome") or "predicts the positive outcome for")
    chosen = _chosen(gate)
    if not chosen:
        return str(gate["reason"])
    if all(c["status"] == "pass" for c in chosen):
        return f"no disparity between groups beyond the policy's limits ({len(chosen)} checked)"
    return _listed([fairness_sentence(c, outcome) for c in chosen])


def fairness_sentence(check: dict[str, Any], outcome: str) -> str:
    """e.g. `the model approves "single" (Marital) at 61% of the rate for "married" (policy: at least 80%)`."""
    details = check.get("details") or {}
    metric = str(details.get("metric") or check["name"])
    worst, best, stat = details.get("worst_group"), details.get("best_group"), check.get("statistic")
    if worst is None or best is None or stat is None or check["status"] == "error":
        return str(check["reason"])
    feature = details.get("feature")
    w, b = f"“{worst}”" + (f" ({feature})" if feature else ""), f"“{best}”"
    ratio = metric.endswith("_ratio")
    value = _ratio_or_points(ratio)
    if metric.startswith("demographic_parity"):
        text = (f"the model {outcome} {w} at {value(stat)} of the rate for {b}" if ratio else
                f"the model {outcome} {w} and {b} at rates {value(stat)} apart")
    elif metric.startswith("equal_opportunity"):
        text = (f"among truly positive cases, the model finds {w} at {value(stat)} of the rate for {b}" if ratio
                else f"among truly positive cases, the model finds {w} and {b} at rates {value(stat)} apart")
    elif metric.startswith("equalized_odds"):
        text = (f"the model's hit or false-alarm rate for {w} is only {value(stat)} of that for {b}" if ratio
                else f"the model's hit or false-alarm rates for {w} and {b} differ by {value(stat)}")
    else:
        text = f"{metric.replace('_', ' ')} between {w} and {b} is {num(stat)}"
    return text + _caveat(check, value) + _policy(check.get("threshold") or {}, value)


def _ratio_or_points(ratio: bool) -> Callable[[float], str]:
    if ratio:
        return lambda x: f"{x:.0%}"
    return lambda x: f"{abs(x) * 100:.3g} percentage points"


def _caveat(check: dict[str, Any], value: Callable[[float], str]) -> str:
    """A failed check whose point estimate looks fine failed on its CI: say how bad it may be."""
    bound, stat = check.get("threshold") or {}, check.get("statistic")
    low, high = check.get("ci") or (None, None)
    if check["status"] == "pass" or stat is None:
        return ""
    if "min" in bound and stat >= bound["min"] and low is not None:
        return f", possibly as low as {value(low)}"
    if "max" in bound and stat <= bound["max"] and high is not None:
        return f", possibly as much as {value(high)}"
    return ""


def _policy(bound: dict[str, float], value: Callable[[float], str]) -> str:
    parts = [f"at least {value(bound['min'])}" if "min" in bound else "",
             f"at most {value(bound['max'])}" if "max" in bound else ""]
    words = " and ".join(p for p in parts if p)
    return f" (policy: {words})" if words else ""


def _drift(gate: dict[str, Any]) -> str:
    checks = ordered_checks(gate)
    features = [c for c in checks if (c.get("details") or {}).get("kind") in ("numeric", "categorical")]
    others = [c for c in checks if c not in features and c["status"] != "pass" and not _share_rule(c)]
    changed = sorted((c["name"] for c in features if drifted(c)), key=str)
    share = (gate.get("details") or {}).get("max_drifted_share")
    if features and changed:
        names = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        text = (f"{len(changed)} of {len(features)} input features changed significantly since the reference "
                f"data ({names})")
        if isinstance(share, int | float):
            text += f" (policy: at most {share:.0%} may change)"
    elif features:
        text = f"none of the {len(features)} input features changed significantly since the reference data"
    else:
        return _generic(gate)
    return _listed([text] + [c["reason"] for c in others])


def _share_rule(check: dict[str, Any]) -> bool:
    """The dataset-level check of the share of drifted features: the sentence above says it."""
    return check["name"] == "dataset" or "max_drifted_share" in (check.get("threshold") or {})


def drifted(check: dict[str, Any]) -> bool:
    flag = (check.get("details") or {}).get("drifted")
    return bool(flag) if isinstance(flag, bool) else check["status"] in ("warn", "fail")


_PHRASES: dict[str, Callable[[dict[str, Any]], str]] = {
    "performance": _performance, "fairness": _fairness, "drift": _drift,
}


# --- data the formats draw ---------------------------------------------------------------


def group_rows(gate: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The fairness gate's details.by_group, per (feature, metric), rows with a value only."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rows = (gate.get("details") or {}).get("by_group")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("value"), int | float) and not isinstance(
                row.get("value"), bool):
            key = (str(row.get("feature", "")), str(row.get("metric", "selection_rate")))
            grouped.setdefault(key, []).append(row)
    return grouped


def parity_floor(gate: dict[str, Any], feature: str, metric: str, rows: list[dict[str, Any]]) -> float | None:
    """The lowest selection rate the demographic parity ratio bound allows, given the best group."""
    if metric != "selection_rate":
        return None
    for check in gate.get("checks") or []:
        details = check.get("details") or {}
        bound = check.get("threshold") or {}
        if details.get("metric") == "demographic_parity_ratio" and details.get("feature") == feature \
                and "min" in bound:
            return float(bound["min"]) * max(float(r["value"]) for r in rows)
    return None


def extremes(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """All rows if few; else the lowest and highest values, where disparities show."""
    if len(rows) <= count:
        return rows
    ordered = sorted(rows, key=lambda r: float(r["value"]))
    return ordered[: count // 2] + ordered[-(count - count // 2):]



# --- formatting shared by the formats ----------------------------------------------------------


def num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:.3g}"


def interval(ci: Any) -> str:
    if not isinstance(ci, list) or len(ci) != 2 or None in ci:
        return ""
    return f"{num(ci[0])} to {num(ci[1])}"


def bound_text(threshold: Any) -> str:
    if not isinstance(threshold, dict):
        return ""
    words = {"min": "≥", "max": "≤"}
    return ", ".join(f"{words.get(k, k)} {num(v)}" for k, v in sorted(threshold.items()))


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
