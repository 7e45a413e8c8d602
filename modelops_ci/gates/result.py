"""What a gate says: `pass | fail | warn | error`, the statistic behind it, and one plain reason.

A gate is made of checks (one per metric, group disparity or feature); the gate's status is the
worst of its checks. `error` means the gate could not be evaluated (too few rows, one class, an
empty group): it fails the pipeline unless the policy marks the gate advisory (fail closed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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

    def to_json(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _clean(asdict(self))
        return cleaned

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        """A check of a gates.json that passed its schema check (spec/schemas/gates.json)."""
        return cls(str(data["name"]), _status(data["status"]), str(data["reason"]),
                   statistic=_number(data.get("statistic")), p_value=_number(data.get("p_value")),
                   ci=_interval(data.get("ci")), threshold=_bounds(data.get("threshold")),
                   n=_count(data.get("n")), details=dict(data.get("details") or {}))


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        """A gate of a gates.json that passed its schema check; fields it does not know are dropped."""
        return cls(str(data["gate"]), _status(data["status"]), str(data["reason"]),
                   advisory=bool(data.get("advisory")), confidence=_number(data.get("confidence")),
                   alpha=_number(data.get("alpha")), n=_count(data.get("n")),
                   groups=_groups(data.get("groups")),
                   checks=[Check.from_json(c) for c in data.get("checks") or []],
                   details=dict(data.get("details") or {}))


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


# -- read back from gates.json (Check.from_json, GateResult.from_json) ----------------------------


def _status(value: Any) -> Status:
    if value not in SEVERITY:
        raise ValueError(f"not a gate status: {value!r} (expected one of {', '.join(SEVERITY)})")
    status: Status = value
    return status


def _number(value: Any) -> float | None:
    """A number as written (an int stays an int, so it prints the same); null stays None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _interval(value: Any) -> tuple[float, float] | None:
    """[low, high]; an interval with an undefined end (null: NaN when written) reads as none."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = _number(value[0]), _number(value[1])
    if low is None or high is None:
        return None
    return low, high


def _bounds(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items()}


def _groups(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items()}
