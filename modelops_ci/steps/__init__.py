"""What the compiled DVC stages call: `modelops-ci step NAME PIPELINE`.

Each step is one module with a `run(ctx)` function; heavy libraries are imported inside it. Its entry
here says what it reads: the compiler makes that its stage's params and deps, and the step is handed
only those params (see `reads.py`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.steps.reads import Reads, SpecFile

# What splitting reads of the target (not `favorable`: a person's good outcome is the fairness gate's
# business). Training reads `favorable` too: a threshold rule counts false *approvals*.
_FEATURES = ("data.time", "data.features", "data.sensitive")  # inferred features leave these out
_LOADS_MODEL = "governance.trusted_types"  # a policy's change to what may be loaded re-checks the model


@dataclass(frozen=True)
class Step:
    module: str
    reads: Reads


STEPS = {
    "ingest": Step("modelops_ci.steps.ingest", Reads(
        params=("task", "data"),
        files=(SpecFile("data.source.path"),),
        code=("data.source.plugin", "data.transforms"))),
    "split": Step("modelops_ci.steps.split", Reads(
        params=("task", "data.target.column", *_FEATURES, "split"),
        outputs=("dataset",))),
    "train": Step("modelops_ci.steps.train", Reads(
        params=("task", "family", "data.target.column", "data.target.positive", "data.target.favorable", *_FEATURES,
                "model", "split",
                _LOADS_MODEL),
        outputs=("train",),
        code=("model.estimator",))),
    "evaluate": Step("modelops_ci.steps.evaluate", Reads(
        params=("task", "family", "data.target.column", "data.time", "data.sensitive", "model.horizon",
                "metrics", _LOADS_MODEL),
        outputs=("model", "model_card", "test"),
        code=("model.estimator",))),  # predicting runs the model's own code
}
# A decision pipeline's steps (task: optimize): the model is a formulation, judged on a scenario set.
DECISION_STEPS = {
    "ingest": Step("modelops_ci.steps.decision.ingest", Reads(
        params=("task", "data"),
        files=(SpecFile("data.source.path"), SpecFile("data.inputs.*.path")),
        code=("data.source.plugin", "data.inputs.*.plugin"))),
    "build": Step("modelops_ci.steps.decision.build", Reads(
        params=("task", "data.scenario", "model"),
        outputs=("dataset", "inputs"),
        files=(SpecFile("model.file"),),
        code=("model.formulation",))),
    "solve": Step("modelops_ci.steps.decision.solve", Reads(
        params=("model.solver", "model.options"),
        outputs=("problems",))),
    "evaluate": Step("modelops_ci.steps.decision.evaluate", Reads(
        params=("expect", "model.options"),
        outputs=("problems", "solved", "solutions"))),
}


def steps_of(task: str) -> dict[str, Step]:
    """The steps a pipeline of `task` runs, in order."""
    return DECISION_STEPS if task == "optimize" else STEPS


# The `gates` stage: collects every gate's report into the verdict.
COLLECT = Reads(params=("gates", "governance"))


def run_step(root: Path, step: str, pipeline: str | None) -> dict[str, Any]:
    """Run one step of one pipeline (`summary` takes none); returns a small summary."""
    from modelops_ci.errors import UserError
    from modelops_ci.steps import gate
    from modelops_ci.steps.context import load_context

    if step == "summary":
        return gate.summary(root.resolve())
    if step == "batch":
        from modelops_ci.steps import batch

        if pipeline is None:
            raise UserError("step batch needs a FAMILY")
        return batch.run(root.resolve(), pipeline)
    known = [*dict.fromkeys([*STEPS, *DECISION_STEPS]), "gate-KIND", "gates", "batch", "summary"]
    if step not in known and not step.startswith("gate-"):
        raise UserError(f"unknown step '{step}': use one of {', '.join(known)}")
    if pipeline is None:
        raise UserError(f"step {step} needs a PIPELINE")
    ctx = load_context(root, pipeline)
    if step == "gates":
        return gate.collect(ctx.reading(COLLECT))
    if step.startswith("gate-"):
        return gate.run_gate(ctx, step.removeprefix("gate-").replace("-", "_"))
    steps = steps_of(ctx.task)
    if step not in steps:
        raise UserError(f"pipeline '{pipeline}' ({ctx.task}) has no step '{step}': its steps are {', '.join(steps)}")
    module = importlib.import_module(steps[step].module)
    summary: dict[str, Any] = module.run(ctx.reading(steps[step].reads))
    return summary
