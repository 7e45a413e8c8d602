"""What a gate says: `pass | fail | warn | error`, the statistic behind it, and one plain reason.

A gate is made of checks (one per metric, group disparity or feature); the gate's status is the
worst of its checks. `error` means the gate could not be evaluated (too few rows, one class, an
empty group): it fails the pipeline unless the policy marks the gate advisory (fail closed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "error"]
SEVERITY: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


@dataclass
class Check:
    """One tested quantity: a metric, a disparity, a feature's drift."""

    name: str
    status: Status
    reason: str
    statistic: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    threshold: dict[str, float] | None = None
    n: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateResult:
    """One gate of one pipeline."""

    gate: str
    status: Status
    reason: str
    advisory: bool = False
    confidence: float | None = None
    alpha: float | None = None
    n: int | None = None
    groups: dict[str, int] | None = None
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        """Whether this result stops the model: a failed or unevaluable blocking gate."""
        return not self.advisory and self.status in ("fail", "error")

    def to_json(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _clean(asdict(self))
        return cleaned


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: SEVERITY[s]) if statuses else "pass"


def error(gate: str, reason: str, *, advisory: bool = False, **extra: Any) -> GateResult:
    """The gate could not be evaluated; `reason` says why and what to do."""
    return GateResult(gate, "error", reason, advisory=advisory, **extra)


class CannotEvaluate(Exception):
    """A gate cannot be evaluated (too few rows, a missing column, an unreadable file).

    Gates raise it; `gates.evaluate` turns it into the gate's `error` result, with `reason` (why, and
    what to do) and `fields`, more of that result (`n`, `alpha`, `details`)."""

    def __init__(self, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields

    def within(self, context: str, **fields: Any) -> CannotEvaluate:
        """The same problem seen from a wider step: `context: reason`, with `fields` added."""
        return CannotEvaluate(f"{context}: {self.reason}", **{**self.fields, **fields})

    def result(self, gate: str) -> GateResult:
        return error(gate, self.reason, **self.fields)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (JSON has neither), tuples lists, numpy scalars floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and not isinstance(value, float) and abs(number) < 2**53:
        return int(number)
    return number if math.isfinite(number) else None
