"""`modelops-ci run`: reproduce the compiled pipelines with DVC, stage by stage, and say what ran.

DVC decides what is stale and runs it (its cache makes a second run of an unchanged commit a
no-op); this module only picks the targets, times each stage, and pushes to the remote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_ci.errors import CheckFailed, ModelopsError, UserError
from modelops_ci.fsutil import remove_leftover_temps
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.offline import apply as stay_offline

LAST_STAGES = ("gates", "evaluate")  # a pipeline runs up to its gates, or evaluate if it has none


@dataclass
class StageRun:
    """One stage of one pipeline in this run."""

    pipeline: str
    stage: str
    ran: bool
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RunReport:
    stages: list[StageRun] = field(default_factory=list)
    pushed: bool = False


def targets(root: Path, pipelines: Iterable[str], run_all: bool, upto: str | None = None) -> list[str]:
    """DVC targets for the named pipelines (or all compiled ones)."""
    compiled = sorted(p.parent.name for p in (root / COMPILED_DIR).glob("*/dvc.yaml"))
    names = list(pipelines) or (compiled if run_all else [])
    if not names:
        raise UserError("name the pipeline(s) to run, or pass --all")
    unknown = [n for n in names if n not in compiled]
    if unknown:
        raise UserError(f"no compiled pipeline {', '.join(unknown)}: run `modelops-ci compile` "
                        f"(compiled: {', '.join(compiled) or 'none'})")
    if upto:
        return [f"{Layout(n).stages}:{upto}" for n in names]
    for name in names:
        _require_contract(root, name)
    chosen = [f"{Layout(n).stages}:{_last_stage(root, n)}" for n in names]
    if run_all and _has_summary(root):
        chosen.append("dvc.yaml:summary")
    return chosen


def _require_contract(root: Path, name: str) -> None:
    """A required data contract must exist before DVC runs (DVC would refuse a missing input)."""
    import yaml

    params = yaml.safe_load((root / Layout(name).params).read_text(encoding="utf-8")) or {}
    gate = (params.get("gates") or {}).get("data_contract")
    if gate is None:
        return
    contract = str(gate.get("contract") or Layout(name).contract)
    if not (root / contract).is_file():
        raise UserError(f"{contract}: not found: the policy requires a data contract for {name}; "
                        f"create it with `modelops-ci contract infer {name}`, review it, and commit it")


def _last_stage(root: Path, name: str) -> str:
    text = (root / Layout(name).stages).read_text(encoding="utf-8")
    return next(stage for stage in LAST_STAGES if f"\n  {stage}:\n" in text)


def _has_summary(root: Path) -> bool:
    top = root / "dvc.yaml"
    return top.is_file() and "\n  summary:\n" in top.read_text(encoding="utf-8")


def run(root: Path, pipelines: Iterable[str] = (), *, run_all: bool = False, force: bool = False,
        verbose: bool = False, upto: str | None = None,
        on_stage: Callable[[StageRun], None] | None = None) -> RunReport:
    """Reproduce the targets (up to stage `upto` if given); `on_stage` hears about each stage."""
    root = root.resolve()
    chosen = targets(root, pipelines, run_all, upto)
    stay_offline()
    _put_tool_on_path()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.repo.reproduce import _reproduce_stage  # the default repro_fn; we wrap it to time stages

    if not verbose:  # our own per-stage lines and table replace DVC's chatter
        logging.getLogger("dvc").setLevel(logging.WARNING)

    report = RunReport()

    def timed(stage: Any, **kwargs: Any) -> Any:
        _sweep_leftovers(stage)
        started = time.perf_counter()
        ran = _reproduce_stage(stage, **kwargs)
        pipeline = Path(stage.path).parent.name if stage.path.endswith(
            f"{COMPILED_DIR}/{Path(stage.path).parent.name}/dvc.yaml") else "repo"
        done = StageRun(pipeline, stage.name, ran is not None, time.perf_counter() - started)
        if stage.name == "evaluate":
            done.metrics = _metrics(root, pipeline)
        report.stages.append(done)
        if on_stage:
            on_stage(done)
        return ran

    try:
        # DVC resolves stage paths against the working directory: run from the repo root.
        with contextlib.chdir(root), Repo(str(root)) as repo:
            repo.reproduce(chosen, force=force, repro_fn=timed)
            report.pushed = _push(repo)
    except DvcException as exc:
        raise _explain(exc) from None
    return report


def _sweep_leftovers(stage: Any) -> None:
    # repro_fn runs under DVC's repo lock, so no other write of these outputs can be under way:
    # whatever temp files lie beside them are debris of a run that was killed.
    for out in stage.outs:
        remove_leftover_temps(Path(out.fs_path))


def _put_tool_on_path() -> None:
    # Stages call `modelops-ci`: make it the one running now, even from an unactivated venv.
    here = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")


def _push(repo: Any) -> bool:
    if not repo.config.get("core", {}).get("remote"):
        return False
    repo.push()
    return True


def _metrics(root: Path, pipeline: str) -> dict[str, float]:
    path = root / Layout(pipeline).metrics
    try:
        loaded: dict[str, float] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded


def _explain(exc: Exception) -> ModelopsError:
    """Map a failed stage to our exit codes; the step already printed its own message."""
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    text = " (".join(str(e) for e in chain) + ")" * (len(chain) - 1)
    found = re.search(r"exited with (\d+)", text)
    code = int(found.group(1)) if found else None
    message = f"dvc repro failed: {text}"
    if code == 2:
        return UserError(message + "\nFix the input named above, then run again.")
    if code == 1:
        return CheckFailed(message)
    return ModelopsError(message)
