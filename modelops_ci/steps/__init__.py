"""What the compiled DVC stages call: `modelops-ci step NAME PIPELINE`.

Each step is one module with a `run(ctx)` function; heavy libraries are imported inside it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

STEPS = {
    "ingest": "modelops_ci.steps.ingest",
    "split": "modelops_ci.steps.split",
    "train": "modelops_ci.steps.train",
    "evaluate": "modelops_ci.steps.evaluate",
}


def run_step(root: Path, step: str, pipeline: str | None) -> dict[str, Any]:
    """Run one step of one pipeline (`summary` takes none); returns a small summary."""
    from modelops_ci.errors import UserError
    from modelops_ci.steps import gate
    from modelops_ci.steps.context import load_context

    if step == "summary":
        return gate.summary(root.resolve())
    known = [*STEPS, "gate-KIND", "gates", "summary"]
    if step not in STEPS and step != "gates" and not step.startswith("gate-"):
        raise UserError(f"unknown step '{step}': use one of {', '.join(known)}")
    if pipeline is None:
        raise UserError(f"step {step} needs a PIPELINE")
    ctx = load_context(root, pipeline)
    if step == "gates":
        return gate.collect(ctx)
    if step.startswith("gate-"):
        return gate.run_gate(ctx, step.removeprefix("gate-").replace("-", "_"))
    module = importlib.import_module(STEPS[step])
    summary: dict[str, Any] = module.run(ctx)
    return summary
