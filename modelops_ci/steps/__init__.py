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


def run_step(root: Path, step: str, pipeline: str) -> dict[str, Any]:
    """Run one step of one pipeline; returns a small summary (rows, metrics...)."""
    from modelops_ci.errors import UserError
    from modelops_ci.steps.context import load_context

    if step not in STEPS:
        raise UserError(f"unknown step '{step}': use one of {', '.join(STEPS)}")
    module = importlib.import_module(STEPS[step])
    summary: dict[str, Any] = module.run(load_context(root, pipeline))
    return summary
