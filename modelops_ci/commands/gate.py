"""`modelops-ci gate`: evaluate the gates the policies require in-process, on the current outputs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelops_ci.errors import UserError
from modelops_ci.gates import GATES
from modelops_ci.gates.verdict import GatesReport, Verdict, gated_pipelines, read
from modelops_ci.layout import Layout


def evaluate(root: Path, names: Iterable[str] = (), only: Iterable[str] = ()) -> list[Verdict]:
    """Evaluate the gates now (in this process) on the pipelines' current outputs."""
    from modelops_ci.steps import gate
    from modelops_ci.steps.context import load_context

    chosen = [k.strip() for k in only if k.strip()]
    unknown = [k for k in chosen if k not in GATES]
    if unknown:
        raise UserError(f"unknown gate kind {', '.join(unknown)}: use {', '.join(GATES)}")
    verdicts = []
    for name in gated_pipelines(root, names):
        if _is_family(root, name):
            verdicts.append(_family_verdict(root, name, chosen))
            continue
        ctx = load_context(root, name)
        _require_outputs(root, name)
        for kind in ctx.params.get("gates", {}):
            if not chosen or kind in chosen:
                gate.run_gate(ctx, kind)
        if not chosen:
            gate.collect(ctx)
            verdicts.append(read(root, name))
        else:
            verdicts.append(Verdict(name, _partial(ctx, chosen)))
    return verdicts


def _is_family(root: Path, name: str) -> bool:
    from modelops_ci.executor.family import BATCH_STAGE

    stages = root / Layout(name).stages
    return stages.is_file() and f"\n  {BATCH_STAGE}:\n" in stages.read_text(encoding="utf-8")


def _family_verdict(root: Path, name: str, only: list[str]) -> Verdict:
    """A batched family's gates run per series inside its stage; here its verdict is counted again
    from the series' results."""
    from modelops_ci.steps import batch

    if only:
        raise UserError(f"{name}: a batched family's gates run with its series: run `modelops-ci run {name}` "
                        "(or `modelops-ci gate` without --only to count its verdict again)")
    batch.collect(root, name)
    return read(root, name)


def _partial(ctx: Any, kinds: list[str]) -> GatesReport:
    from modelops_ci.steps.gate import _read, gates_report

    required = [k for k in kinds if k in ctx.params.get("gates", {})]
    results = [_read(ctx.path(ctx.layout.gate_report(k)), k) for k in required]
    return GatesReport.from_json(gates_report(ctx.name, results, ctx.params.get("governance", {})))


def _require_outputs(root: Path, name: str) -> None:
    missing = [p for p in (Layout(name).predictions, Layout(name).test) if not (root / p).is_file()]
    if missing:
        raise UserError(f"{name}: {', '.join(missing)} missing: run `modelops-ci run {name}` first")
