"""`modelops-ci gate` and the verdict of `run`/`ci`: evaluate gates in-process, or read what the
gate stages wrote, and decide the exit code (0 all passed, 1 any blocking gate failed)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.errors import CheckFailed, UserError
from modelops_ci.gates import GATES
from modelops_ci.layout import COMPILED_DIR, Layout


@dataclass(frozen=True)
class Verdict:
    """A pipeline's gates.json, read back."""

    pipeline: str
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.report.get("verdict") == "pass"

    @property
    def gates(self) -> list[dict[str, Any]]:
        gates: list[dict[str, Any]] = self.report.get("gates", [])
        return gates


def gated_pipelines(root: Path, names: Iterable[str] = ()) -> list[str]:
    """Compiled pipelines that have gates (all, or the named ones — each must exist)."""
    compiled = {p.parent.name: p for p in sorted((root / COMPILED_DIR).glob("*/dvc.yaml"))}
    wanted = list(names) or list(compiled)
    unknown = [n for n in wanted if n not in compiled]
    if unknown:
        raise UserError(f"no compiled pipeline {', '.join(unknown)}: run `modelops-ci compile` "
                        f"(compiled: {', '.join(compiled) or 'none'})")
    return [n for n in wanted if "  gates:" in compiled[n].read_text(encoding="utf-8")]


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


def _partial(ctx: Any, kinds: list[str]) -> dict[str, Any]:
    from modelops_ci.steps.gate import _read, gates_report

    required = [k for k in kinds if k in ctx.params.get("gates", {})]
    results = [_read(ctx.path(ctx.layout.gate_report(k)), k) for k in required]
    return gates_report(ctx.name, results, ctx.params.get("governance", {}))


def _require_outputs(root: Path, name: str) -> None:
    missing = [p for p in (Layout(name).predictions, Layout(name).test) if not (root / p).is_file()]
    if missing:
        raise UserError(f"{name}: {', '.join(missing)} missing: run `modelops-ci run {name}` first")


def read(root: Path, name: str) -> Verdict:
    path = root / Layout(name).gates
    try:
        return Verdict(name, json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        raise UserError(f"{Layout(name).gates}: missing or unreadable: run `modelops-ci run {name}`") from None


def lines(verdicts: list[Verdict]) -> list[str]:
    """One line per gate: pipeline, gate, status, reason."""
    out = []
    for verdict in verdicts:
        out.append(f"{verdict.pipeline}: {verdict.report.get('verdict', '?').upper()}")
        for result in verdict.gates:
            flag = " (advisory)" if result.get("advisory") else ""
            out.append(f"  {result['gate']:<14} {result['status']:<5}{flag} {result.get('reason', '')}")
    return out


def enforce(verdicts: list[Verdict]) -> None:
    """Exit 1 (CheckFailed) when any pipeline's verdict is fail."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        reasons = "; ".join(f"{v.pipeline}: {v.report.get('reason', 'failed')}" for v in failed)
        raise CheckFailed(f"gate(s) failed: {reasons}")
