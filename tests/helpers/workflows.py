"""This project's workflows, its composite action and the starter workflows `init` writes, read as YAML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.paths import PROJECT

WORKFLOWS = PROJECT / ".github" / "workflows"
ACTION = PROJECT / ".github" / "actions" / "modelops" / "action.yml"
STARTER = PROJECT / "modelops_ci" / "starter" / "dot-github" / "workflows"
NAMES = ("ci.yml", "ci-matrix.yml", "promote.yml", "monitor.yml", "rollout.yml")
OWN = [WORKFLOWS / name for name in NAMES]
STARTERS = [STARTER / name for name in NAMES]


def load_workflow(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def workflow_steps(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(job id, step) of a workflow, or ("action", step) of the composite action."""
    doc = load_workflow(path)
    if "runs" in doc:
        yield from (("action", step) for step in doc["runs"]["steps"])
        return
    for job_id, job in doc["jobs"].items():
        yield from ((job_id, step) for step in job["steps"])
