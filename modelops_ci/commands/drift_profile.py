"""`modelops-ci drift profile`: a pipeline's drift reference, precomputed into a small file."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.errors import UserError


def profile(root: Path, pipeline: str, output: Path | None = None) -> Path:
    """Write the reference profile (histograms and sketches) of `pipeline` to `output` (default:
    reports/<pipeline>/drift-reference.npz; relative to the repository); returns the file."""
    from modelops_ci.gates import profile as profiles
    from modelops_ci.gates.context import GateContext
    from modelops_ci.gates.drift.inputs import reference_profile
    from modelops_ci.gates.result import CannotEvaluate
    from modelops_ci.steps.context import load_context

    root = root.resolve()
    target = output if output is not None else Path("reports") / pipeline / "drift-reference.npz"
    if not target.is_absolute():
        target = root / target
    try:
        built, _ = reference_profile(GateContext(load_context(root, pipeline)), grid=profiles.GRID)
    except CannotEvaluate as exc:  # the gate's "cannot evaluate" is, for this command, bad input
        raise UserError(f"drift profile {pipeline}: {exc.reason}") from None
    profiles.save(built, target)
    return target
