"""Formatting every report shares: numbers, intervals, policy bounds, one-line text, and the names
of gates, groups and per-group rates as people read them (unescaped: each format escapes them)."""

from __future__ import annotations

import re
from typing import Any

GATE_TITLES = {"data_contract": "Data contract", "performance": "Performance",
               "compare": "Champion vs challenger", "fairness": "Fairness", "drift": "Drift",
               "series": "Series of the family"}
RATE_LABELS = {"selection_rate": "positive-prediction rate", "true_positive_rate": "true positive rate",
               "false_positive_rate": "false positive rate"}
_INTERVAL = re.compile(r"\[(-?[\d.]+(?:e[+-]?\d+)?), (-?[\d.]+(?:e[+-]?\d+)?)\)")


def num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:.3g}"


def interval(ci: tuple[float, float] | None) -> str:
    if ci is None:
        return ""
    return f"{num(ci[0])} to {num(ci[1])}"


def estimate_with_ci(value: Any, ci: Any) -> str:
    """`2.1 (1.4 to 3.2)`; the estimate alone when there is no interval."""
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return f"{num(value)} ({interval((ci[0], ci[1]))})"
    return num(value)


def percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def p_value_text(p_value: float | None, threshold: dict[str, float] | None, details: dict[str, Any]) -> str:
    """A check's p-value with the alpha it was judged at: `0.0032, corrected 0.013 (alpha 0.05)`; a
    p-value no alpha decides on says so (the DeLong test beside the CI that decides)."""
    if p_value is None:
        return ""
    shown = f"{p_value:.3g}"
    corrected = details.get("p_adjusted")
    if isinstance(corrected, int | float) and not isinstance(corrected, bool):
        shown += f", corrected {corrected:.3g}"
    alpha = (threshold or {}).get("alpha")
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        return f"{shown} (alpha {alpha:.3g})"
    return f"{shown} (for information: no alpha)"


def bound_text(threshold: dict[str, float] | None) -> str:
    if threshold is None:
        return ""
    words = {"min": "≥", "max": "≤"}
    return ", ".join(f"{words.get(k, k)} {num(v)}" for k, v in sorted(threshold.items()))


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def gate_title(kind: str) -> str:
    return GATE_TITLES.get(kind, kind.replace("_", " ").capitalize())


def plain_group(value: str) -> str:
    """A derived band as words: `[0, 30)` -> `under 30`, `[30, 50)` -> `30 to under 50`."""
    def words(match: re.Match[str]) -> str:
        low, high = match.groups()
        return f"under {high}" if float(low) == 0 else f"{low} to under {high}"

    return _INTERVAL.sub(words, value)


def rate_title(metric: str, positive: Any = None) -> str:
    """What a per-group rate is, in words: `share predicted “Status = good”`."""
    if not positive:
        return RATE_LABELS.get(metric, metric.replace("_", " "))
    return {"selection_rate": f"share predicted “{positive}”",
            "true_positive_rate": f"true positive rate for “{positive}”",
            "false_positive_rate": f"false positive rate for “{positive}”"}.get(metric, metric.replace("_", " "))
