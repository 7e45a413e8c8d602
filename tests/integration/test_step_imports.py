"""Per-stage processes import only what their step needs (start-up is paid once per stage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_FOR_DATA_STEPS = ("mlflow", "dvc", "matplotlib", "fairlearn")


def _modules_after(step: str, pipeline: str, repo: Path) -> set[str]:
    code = (
        "import sys, json\n"
        "from modelops_ci.cli.main import main\n"
        f"try:\n    main(['step', {step!r}, {pipeline!r}])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(proc.stdout.strip().splitlines()[-1])}


@pytest.mark.parametrize("step", ["ingest", "split"])
def test_data_steps_import_neither_mlflow_nor_dvc(ml_repo: Path, step: str) -> None:
    if step == "split":
        _modules_after("ingest", "loans", ml_repo)
    loaded = _modules_after(step, "loans", ml_repo)
    assert "pandas" in loaded, "the step really ran"
    assert not loaded & set(HEAVY_FOR_DATA_STEPS), sorted(loaded & set(HEAVY_FOR_DATA_STEPS))
