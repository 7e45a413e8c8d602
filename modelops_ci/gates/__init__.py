"""The gates of DESIGN §6. Each kind is one module with `evaluate(ctx, settings) -> GateResult`;
this registry is the only list of them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext
    from modelops_ci.gates.result import GateResult

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
