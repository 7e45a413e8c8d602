"""Compare (decision models): is this commit's formulation not worse than the champion's, on the same,
current scenarios?

The champion is the verified version at the policy's stage, found as the ML compare finds it
(gates/compare.py). Its formulation is code at a signed commit whose promotion was approved: it
builds, solves and evaluates the current scenario set in a temporary worktree of that commit
(registry/worktree.py), with that commit's compiled settings, through the same steps, each in its own
process and without the signing key or any token (`stage_env`). The two are then paired scenario by
scenario: the relative objective difference (challenger - champion) / |champion|, signed so that
positive is worse (a higher cost, or a lower value when maximising). A seeded bootstrap over the
scenarios gives the mean difference's CI; the gate passes when its upper bound is below `margin`
(non-inferiority, as for a loss in the ML compare). The default margin is the relative MIP gap the
solver was asked for: two solutions within it of the optimum cannot be told apart. A scenario the
champion solves and the challenger does not fails the gate by itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import bootstrap, compare
from modelops_ci.gates.decision import scenarios
from modelops_ci.gates.decision.scenarios import Results
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, worst

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext
    from modelops_ci.registry.tags import Champion

GATE = "compare"
STEPS = ("build", "solve", "evaluate")
SAME_MODEL = ("formulation", "params", "solver", "options")  # the card's fields that decide the decisions


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    return compare.against_champion(ctx, settings, _against)


def _against(ctx: GateContext, settings: dict[str, Any], found: Champion) -> GateResult:
    ours = scenarios.read(ctx)
    if _same_model(ctx, found):
        return GateResult(GATE, "pass", "the challenger is the champion's formulation (the same code digest, "
                          "params, solver and options)", n=len(ours.scenarios), details={"same_model": True})
    theirs, sense = champion_results(ctx, found)
    seed = int((ctx.params.get("model") or {}).get("options", {}).get("seed", 0))
    return assess(ours, theirs, maximise=sense == "max", margin=float(settings.get("margin", ours.mip_gap)),
                  confidence=float(settings.get("confidence", compare.DEFAULT_CONFIDENCE)), seed=seed)


def _same_model(ctx: GateContext, found: Champion) -> bool:
    """Whether both cards (the champion's as its commit holds it) name the same formulation, solver
    and options: then it would make the same decisions, and is not solved again."""
    from modelops_ci import git

    relative = ctx.step.layout.formulation
    theirs = git.show_file(ctx.step.root, found.commit, relative)
    ours = ctx.step.path(relative)
    if not theirs or not ours.is_file():
        return False
    mine, champion = json.loads(ours.read_text(encoding="utf-8")), json.loads(theirs)
    return all(mine.get(key) == champion.get(key) for key in SAME_MODEL)


def champion_results(ctx: GateContext, found: Champion) -> tuple[Results, str]:
    """The champion's results on this commit's scenarios, and whether its objective is a min or a max."""
    from modelops_ci.registry.worktree import stage_env, worktree

    layout = ctx.step.layout
    with worktree(ctx.step.root, found.commit) as tree:
        if not (tree / layout.params).is_file():
            raise CannotEvaluate(f"its commit {found.commit[:12]} has no {layout.params}")
        for relative in (layout.dataset, layout.inputs):
            _copy(ctx.step.path(relative), tree / relative)
        for step in STEPS:
            done = subprocess.run([_executable(), "step", step, ctx.name], cwd=tree, env=stage_env(),
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                said = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise CannotEvaluate(f"its {step} step failed on the current scenarios: {said}")
        text = (tree / layout.results).read_text(encoding="utf-8")
    return scenarios.parse(text, f"the champion's {layout.results}"), str(json.loads(text).get("sense", "min"))


def assess(ours: Results, theirs: Results, *, maximise: bool, margin: float, confidence: float, seed: int,
           resamples: int = compare.RESAMPLES) -> GateResult:
    champion = {s.name: s for s in theirs.scenarios}
    paired = [(s.name, s.solution.objective, champion[s.name].solution.objective)  # type: ignore[union-attr]
              for s in ours.scenarios if s.solution and s.name in champion and champion[s.name].solution]
    if not paired:
        raise CannotEvaluate(f"no scenario has a solution from both formulations (challenger: {ours.statuses}; "
                             f"champion: {theirs.statuses})")
    lost = [s.name for s in ours.scenarios
            if s.solution is None and s.expected == "optimal" and s.name in champion and champion[s.name].solution]
    checks = [objective_check(paired, maximise, margin, confidence, seed, resamples)]
    if lost:
        checks.append(Check("solved", "fail", f"the champion solves {len(lost)} scenario(s) this formulation does "
                            f"not: {scenarios.listing_names(lost)}", n=len(lost), details={"scenarios": lost}))
    status = worst([c.status for c in checks])
    reason = "; ".join(c.reason for c in checks if c.status == status)
    return GateResult(GATE, status, reason, confidence=confidence, n=len(paired), checks=checks,
                      details={"margin": margin, "sense": "max" if maximise else "min"})


def objective_check(paired: list[tuple[str, float, float]], maximise: bool, margin: float, confidence: float,
                    seed: int, resamples: int) -> Check:
    """The mean relative objective difference (positive: the challenger is worse) with its paired
    bootstrap CI over the scenarios: each resample draws the same scenarios for both formulations."""
    ours = np.array([p[1] for p in paired])
    theirs = np.array([p[2] for p in paired])
    worse = (theirs - ours if maximise else ours - theirs) / np.maximum(np.abs(theirs), 1e-12)
    drawn = np.random.default_rng(seed).integers(0, len(worse), size=(resamples, len(worse)))
    ci = bootstrap.percentile_ci(worse[drawn].mean(axis=1), confidence)
    mean = float(worse.mean())
    shown = f"{mean:+.3%} ({confidence:.0%} CI {ci[0]:+.3%} to {ci[1]:+.3%}) over {len(worse)} scenarios"
    if compare.non_inferior(ci, margin, higher_is_better=False):
        return Check("objective", "pass", f"the objective is {shown} against the champion's: not worse by "
                     f"more than the margin {margin:.3%}", statistic=mean, ci=ci, threshold={"margin": margin},
                     n=len(worse), details={"resamples": resamples, "seed": seed})
    return Check("objective", "fail", f"the objective is {shown} against the champion's: not shown within the "
                 f"margin {margin:.3%} (positive is worse)", statistic=mean, ci=ci, threshold={"margin": margin},
                 n=len(worse), details={"resamples": resamples, "seed": seed})


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    else:
        raise CannotEvaluate(f"{source.name} is missing: run the pipeline first")


def _executable() -> str:
    """This tool's own `modelops-ci` (not one earlier on PATH, nor the worktree's package)."""
    beside = Path(sys.executable).parent / "modelops-ci"
    return str(beside) if beside.is_file() else "modelops-ci"
