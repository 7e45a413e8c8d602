"""The gates of DESIGN §6. Each kind is one module with `evaluate(ctx, settings) -> GateResult`;
this registry is the only list of them, and `evaluate` the one way a gate is run."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelops_ci.gates.result import CannotEvaluate, GateResult, error

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

GATES = {
    "data_contract": "modelops_ci.gates.data",
    "performance": "modelops_ci.gates.performance",
    "compare": "modelops_ci.gates.compare",
    "fairness": "modelops_ci.gates.fairness",
    "drift": "modelops_ci.gates.drift",
}


class Gate(Protocol):
    def evaluate(self, ctx: GateContext, settings: dict[str, Any]) -> GateResult: ...


def gate_module(kind: str) -> Gate:
    module: Gate = importlib.import_module(GATES[kind])
    return module


def evaluate(kind: str, ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    """Gate `kind` on `ctx`; a gate that cannot be evaluated is its `error` result, never an exception."""
    try:
        return gate_module(kind).evaluate(ctx, settings)
    except CannotEvaluate as exc:
        return exc.result(kind)
    except FileNotFoundError as exc:
        return error(kind, f"an input is missing ({Path(str(exc.filename)).name}): run the pipeline first")
