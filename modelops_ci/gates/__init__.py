"""The gates of DESIGN §6. Each kind is one module with `evaluate(ctx, settings) -> GateResult` and an
entry here saying what it reads (its stage's params and deps, and all the params it is handed; see
steps/reads.py); this registry is the only list of them, and `evaluate` the one way a gate is run."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelops_ci.gates.result import CannotEvaluate, GateResult, error
from modelops_ci.steps.reads import Reads, SpecFile

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

_SEED = "split.seed"  # bootstrap and sampling seeds
_FEATURES = ("data.target.column", "data.time", "data.features", "data.sensitive")  # which columns are features


@dataclass(frozen=True)
class GateKind:
    module: str
    reads: Reads
    decision: GateKind | None = None  # how the kind judges a decision model (task: optimize), if it differs


GATES = {
    "data_contract": GateKind("modelops_ci.gates.data", Reads(
        params=("gates.data_contract",),
        outputs=("dataset",),
        files=(SpecFile("gates.data_contract.contract", unset="contract"),))),
    "performance": GateKind("modelops_ci.gates.performance", Reads(
        params=("gates.performance", "task", _SEED),
        outputs=("predictions", "model_card"))),  # a forecast's MASE scale is on the card
    # compare also reads the champion, a registry (git tag) state: its stage always runs.
    "compare": GateKind("modelops_ci.gates.compare", Reads(
        params=("gates.compare", "task", _SEED, "governance", "data.target.column", "data.time",
                "data.sensitive", "model.horizon"),  # the champion predicts as evaluate does
        outputs=("predictions", "model_card", "test")),
        # a decision model's champion solves the current scenarios with its own formulation
        decision=GateKind("modelops_ci.gates.decision.compare", Reads(
            params=("gates.compare", "task", "governance", "model.options"),
            outputs=("results", "dataset", "inputs", "formulation")))),
    "fairness": GateKind("modelops_ci.gates.fairness", Reads(
        params=("gates.fairness", "task", "data.target", "data.sensitive", _SEED),  # target: positive, favorable
        outputs=("predictions", "model_card"))),  # the card names the positive class the model learnt
    "drift": GateKind("modelops_ci.gates.drift", Reads(
        params=("gates.drift", "task", *_FEATURES, "drift", _SEED, "governance.trusted_types"),
        outputs=("train", "test", "model", "model_card", "predictions"),  # the model scores drift.current
        files=(SpecFile("drift.reference", unset="train", own=("train",)), SpecFile("drift.current")))),
    # a decision model's (task: optimize): each judges the scenarios' results (gates/decision/)
    "feasibility": GateKind("modelops_ci.gates.decision.feasibility", Reads(
        params=("gates.feasibility",), outputs=("results",))),
    "violations": GateKind("modelops_ci.gates.decision.violations", Reads(
        params=("gates.violations",), outputs=("results",))),
    "optimality": GateKind("modelops_ci.gates.decision.optimality", Reads(
        params=("gates.optimality",), outputs=("results",))),
    "solve_time": GateKind("modelops_ci.gates.decision.solve_time", Reads(
        params=("gates.solve_time",), outputs=("results",))),
}


class Gate(Protocol):
    def evaluate(self, ctx: GateContext, settings: dict[str, Any]) -> GateResult: ...


def gate_kind(kind: str, task: str) -> GateKind:
    """Gate `kind` as it judges a pipeline of `task`."""
    entry = GATES[kind]
    return entry.decision if task == "optimize" and entry.decision else entry


def gate_module(kind: str, task: str = "") -> Gate:
    module: Gate = importlib.import_module(gate_kind(kind, task).module)
    return module


def evaluate(kind: str, ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    """Gate `kind` on `ctx`; a gate that cannot be evaluated is its `error` result, never an exception."""
    try:
        return gate_module(kind, str(ctx.params.get("task", ""))).evaluate(ctx, settings)
    except CannotEvaluate as exc:
        return exc.result(kind)
    except FileNotFoundError as exc:
        return error(kind, f"an input is missing ({Path(str(exc.filename)).name}): run the pipeline first")
