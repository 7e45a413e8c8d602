"""The gate stages: `gate-KIND` evaluates one gate into reports/<p>/gates/<kind>.json; `gates`
collects them into reports/<p>/gates.json with the pipeline's verdict; `summary` collects every
pipeline's verdict. Gate steps exit 0 whatever the verdict (a failed gate is a result, and every
gate should be reported); `run`, `gate` and `ci` turn the verdict into the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelops_ci import gates
from modelops_ci.gates import GATES, gate_kind
from modelops_ci.gates.context import GateContext
from modelops_ci.gates.result import GateResult, error
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.steps.context import StepContext

REPORT_VERSION = 1


def evaluate(ctx: StepContext, kind: str, frames: dict[str, Any] | None = None,
             card: dict[str, Any] | None = None) -> GateResult:
    """Run gate `kind` with the pipeline's effective (policy-merged) settings, handed only the params
    its stage depends on; `frames` are tables already in memory (a batched series' train, test...),
    `card` the model's card when no file holds it (a batched series)."""
    ctx = ctx.reading(gate_kind(kind, str(ctx.params.get("task", ""))).reads)
    settings: dict[str, Any] = dict(ctx.params.get("gates", {}).get(kind) or {})
    advisory = bool(settings.get("advisory", False))
    result = gates.evaluate(kind, GateContext(ctx, dict(frames or {}), card), settings)
    result.advisory = advisory
    return result


def run_gate(ctx: StepContext, kind: str) -> dict[str, Any]:
    if kind not in GATES:
        from modelops_ci.errors import UserError

        raise UserError(f"unknown gate '{kind}': use one of {', '.join(GATES)}")
    result = evaluate(ctx, kind)
    ctx.write_json(ctx.layout.gate_report(kind), result.to_json())
    return {"gate": kind, "status": result.status}


def collect(ctx: StepContext) -> dict[str, Any]:
    """gates.json: every required gate's result and the verdict."""
    kinds = list(ctx.params.get("gates", {}))
    results = [_read(ctx.path(ctx.layout.gate_report(kind)), kind) for kind in kinds]
    report = gates_report(ctx.name, results, ctx.params.get("governance", {}))
    ctx.write_json(ctx.layout.gates, report)
    return {"verdict": report["verdict"]}


def gates_report(name: str, results: list[dict[str, Any]], governance: dict[str, Any]) -> dict[str, Any]:
    blocking = [r for r in results if not r.get("advisory") and r["status"] in ("fail", "error")]
    return {
        "version": REPORT_VERSION,
        "pipeline": name,
        "verdict": "fail" if blocking else "pass",
        "reason": _verdict_reason(results, blocking),
        "policies": governance.get("policies", []),
        "gates": results,
    }


def _verdict_reason(results: list[dict[str, Any]], blocking: list[dict[str, Any]]) -> str:
    if not results:
        return "no gates are required for this pipeline"
    if not blocking:
        return f"all {len(results)} required gate(s) passed"
    return "; ".join(f"{r['gate']}: {r['reason']}" for r in blocking)


def _read(path: Path, kind: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return error(kind, f"no result: {path.name} is missing or unreadable").to_json()
    return loaded


def summary(root: Path) -> dict[str, Any]:
    """reports/summary.json: the verdict of every compiled pipeline with gates; a batched family is
    one of them, with its verdict, and under `families` how many of its series failed and how many
    its policy allows."""
    verdicts, families = {}, {}
    for folder in sorted((root / COMPILED_DIR).glob("*/dvc.yaml")):
        gates_file = root / Layout(folder.parent.name).gates
        if not gates_file.is_file():
            continue
        report = json.loads(gates_file.read_text(encoding="utf-8"))
        verdicts[folder.parent.name] = report["verdict"]
        if isinstance(report.get("series"), list):
            families[folder.parent.name] = _family_counts(report)
    report = {"version": REPORT_VERSION, "verdict": "fail" if "fail" in verdicts.values() else "pass",
              "pipelines": verdicts, "families": families}
    from modelops_ci.fsutil import write_atomic

    write_atomic(root / "reports" / "summary.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    return {"verdict": report["verdict"]}


def _family_counts(report: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = next((g for g in report["gates"] if g.get("gate") == "series"), {})
    return {"series": len(report["series"]), "failed": sum(s.get("verdict") != "pass" for s in report["series"]),
            "allowed": (rule.get("threshold") or {}).get("max")}
