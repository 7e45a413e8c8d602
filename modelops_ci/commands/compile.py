"""`modelops-ci compile`: the governed specs written out as DVC pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelops_ci.errors import CheckFailed
from modelops_ci.executor import dvc
from modelops_ci.spec import workspace
from modelops_ci.spec.workspace import Workspace


@dataclass(frozen=True)
class Compiled:
    """What compile did: the files it changed (written or removed) and the pipelines compiled."""

    changed: tuple[str, ...]
    pipelines: tuple[str, ...]
    removed: tuple[str, ...] = ()


def compile_repo(root: Path, *, check: bool = False, space: Workspace | None = None) -> Compiled:
    """Write dvc.yaml files from the specs; with `check`, only compare and fail when stale.

    `space` is the repo already read (by `ci`, which validated it first).
    """
    space = space or workspace.read(root)
    space.raise_problems()
    plan = dvc.plan(space.root, space.governed)
    names = tuple(space.units())
    if check:
        stale = dvc.diff(space.root, plan)
        if stale:
            raise CheckFailed(stale + "\nThe compiled DVC pipeline is stale: run `modelops-ci compile` "
                              "and commit the result.")
        return Compiled((), names)
    return Compiled(tuple(dvc.write(space.root, plan)), names, plan.stale)
