"""Recompute a pipeline's gates at a commit: the job that signs a promotion re-runs them from the
pulled data and models instead of believing the committed reports/<p>/gates.json (DESIGN 7a).

A clean temporary `git worktree` at the commit (never the user's work tree) gets the trusted
checkout's DVC cache and remotes, pulls the pipeline's outputs, and runs `dvc repro --force
--single-item` on each gate stage (gate-<kind>..., then gates). The gates.json they write must pass
and be byte for byte (md5) the committed one; otherwise the gates whose results differ are named.

The stages run only if they are the commands `modelops-ci compile` writes (`modelops-ci step
<stage> <pipeline>`), so the commit under promotion supplies data, never a command line; they run
with the tool of this process, without the signing key or tokens in their environment.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelops_ci import git
from modelops_ci.errors import CheckFailed, UserError
from modelops_ci.layout import Layout
from modelops_ci.registry.series import BATCH_STAGE
from modelops_ci.registry.worktree import run_dvc, share_dvc_state, worktree

FINAL_STAGE = "gates"
FAMILY_STAGE = BATCH_STAGE
GATE_PREFIX = "gate-"
STAGE_DIR = "../.."  # compiled/<p>/ back to the repository root, as compile writes it
# What a gate stage must never see: it runs beside the promotion, not as part of it.
class GatesDiffer(CheckFailed):
    """The gates re-run at the commit do not give the committed report (exit 1)."""


@dataclass(frozen=True)
class Recomputed:
    """The gates re-run at `commit`: their verdict, the report's md5, how long it took."""

    pipeline: str
    commit: str
    stages: tuple[str, ...]
    verdict: str
    md5: str
    seconds: float


def recompute(root: Path, pipeline: str, commit: str) -> Recomputed:
    """Re-run `pipeline`'s gate stages at `commit`; GatesDiffer unless the report passes and equals
    the committed one. `commit` is a full commit id (resolved by the caller)."""
    started = time.perf_counter()
    files = Layout(pipeline)
    committed = git.show_file(root, commit, files.gates) or b""
    if not committed:
        raise GatesDiffer(f"{files.gates} is not in commit {commit[:12]}: nothing to recompute")
    with worktree(root, commit) as tree:
        stages = gate_stages(tree, pipeline)
        share_dvc_state(root, tree)
        _dvc(tree, "pull", files.stages)
        _dvc(tree, "repro", "--force", "--single-item", *(f"{files.stages}:{s}" for s in stages))
        fresh = (tree / files.gates).read_bytes()
    _require_same(pipeline, commit, committed, fresh)
    verdict = str(json.loads(fresh).get("verdict", ""))
    return Recomputed(pipeline, commit, stages, verdict, _md5(fresh), time.perf_counter() - started)


def gate_stages(tree: Path, pipeline: str) -> tuple[str, ...]:
    """The gate stages of the compiled pipeline in `tree`, in order, each checked to be the command
    compile writes: anything else is the commit asking this job to run its code."""
    path = tree / Layout(pipeline).stages
    try:
        stages = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise UserError(f"{Layout(pipeline).stages} cannot be read at the commit ({exc}): compile and "
                        "commit it") from None
    chosen = tuple(name for name in stages if str(name).startswith(GATE_PREFIX))
    if FAMILY_STAGE in stages and FINAL_STAGE not in stages:
        raise GatesDiffer(f"{pipeline} is a batched family: its gates run inside its {FAMILY_STAGE} stage, which "
                          "--recompute-gates does not re-run yet; promote it without --recompute-gates")
    if FINAL_STAGE not in stages:
        raise GatesDiffer(f"{Layout(pipeline).stages} has no '{FINAL_STAGE}' stage: the pipeline has no gates "
                          "to recompute")
    for name in (*chosen, FINAL_STAGE):
        _require_compiled_command(pipeline, name, stages[name])
    return (*chosen, FINAL_STAGE)


def _require_compiled_command(pipeline: str, name: str, stage: Any) -> None:
    expected = f"modelops-ci step {name} {pipeline}"
    found = stage.get("cmd") if isinstance(stage, dict) else None
    wdir = stage.get("wdir") if isinstance(stage, dict) else None
    if found != expected or wdir != STAGE_DIR:
        raise GatesDiffer(f"stage {name} of {Layout(pipeline).stages} runs {found!r} (wdir {wdir!r}), not "
                          f"{expected!r} as `modelops-ci compile` writes it: refusing to run it beside the "
                          "signing key; compile the pipeline and commit it")


def _require_same(pipeline: str, commit: str, committed: bytes, fresh: bytes) -> None:
    path = Layout(pipeline).gates
    report = json.loads(fresh)
    if _md5(fresh) == _md5(committed) and report.get("verdict") == "pass":
        return
    differing = differing_gates(committed, fresh)
    named = ", ".join(differing) or "none by its result (the report's other fields differ)"
    raise GatesDiffer(f"the gates re-run at {commit[:12]} do not give the committed {path}: recomputed verdict "
                      f"{report.get('verdict')!r}; gate(s) whose result differs: {named}. The committed "
                      "results are not what the data and model give: nothing was signed")


def differing_gates(committed: bytes, fresh: bytes) -> list[str]:
    """The gate kinds whose entry in the two gates.json reports differs (missing counts), sorted."""
    before, after = _by_gate(committed), _by_gate(fresh)
    return sorted(kind for kind in before.keys() | after.keys() if before.get(kind) != after.get(kind))


def _by_gate(raw: bytes) -> dict[str, Any]:
    try:
        report = json.loads(raw)
    except ValueError:
        return {}
    entries = report.get("gates") if isinstance(report, dict) else None
    return {str(g.get("gate")): g for g in entries or [] if isinstance(g, dict)}


def _md5(raw: bytes) -> str:
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


# -- DVC in the worktree ---------------------------------------------------------------------------


def _dvc(tree: Path, *args: str) -> None:
    done = run_dvc(tree, *args)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise GatesDiffer(f"`dvc {' '.join(args[:2])}` failed while recomputing the gates: {said}")
