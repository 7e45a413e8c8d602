"""The same commit gives the same bits on any x86-64 CPU with AVX2: modelops-ci pins the AVX2 kernels
of NumPy and OpenBLAS before NumPy loads (modelops_ci/numerics.py)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops_ci import numerics
from tests.helpers.cli import run_exe
from tests.helpers.paths import PROJECT
from tests.helpers.repos import git

HERE_FLAGS = numerics.cpu_flags()
ON_AVX2_X86 = platform.machine().lower() in {"x86_64", "amd64"} and {"avx2", "fma"} <= HERE_FLAGS
KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")
needs_avx2 = pytest.mark.skipif(not ON_AVX2_X86, reason="the committed example bits are those of the "
                                "x86-64 AVX2 kernels, which this CPU does not have")


def _fresh_python(code: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True,
                          text=True, check=True)
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


KERNELS_AFTER_PIN = """
import json
from modelops_ci import numerics
applied = numerics.pin_portable_kernels()
import numpy, scipy.linalg, threadpoolctl
from numpy._core._multiarray_umath import __cpu_features__
cores = sorted({pool.get("architecture") for pool in threadpoolctl.threadpool_info()
                if pool["internal_api"] == "openblas"})
print(json.dumps({"applied": applied, "cores": cores, "x86_v4": __cpu_features__.get("X86_V4")}))
"""


@needs_avx2
def test_numpy_and_scipy_load_the_avx2_kernels_after_the_pin() -> None:
    seen = _fresh_python(KERNELS_AFTER_PIN)
    assert seen["cores"] == ["Haswell"]  # numpy's OpenBLAS and scipy's
    assert seen["x86_v4"] is False


@needs_avx2
def test_a_kernel_the_user_chose_is_kept() -> None:
    seen = _fresh_python(KERNELS_AFTER_PIN, OPENBLAS_CORETYPE="Sandybridge", NPY_DISABLE_CPU_FEATURES="")
    assert seen["applied"] == {}
    assert seen["cores"] == ["Sandybridge"]


def test_a_process_that_loaded_numpy_already_is_left_alone() -> None:
    code = "import json, numpy\nfrom modelops_ci import numerics\nprint(json.dumps(numerics.pin_portable_kernels()))"
    clean = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@needs_avx2
def test_the_example_forecaster_reproduces_its_committed_bytes_on_this_cpu(tmp_path: Path) -> None:
    """The committed lock was written on another machine; this CPU (AVX-512 or not) gives the same bytes."""
    repo = tmp_path / "example"
    for part in ("pipelines", "policies", "contracts", "compiled"):
        shutil.copytree(PROJECT / part, repo / part)
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "example", cwd=repo)
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    for step in ("ingest", "split", "train", "evaluate"):
        result = run_exe("step", step, "arrivals-japan", cwd=repo, env=env)
        assert result.exit_code == 0, result.stderr
    lock = yaml.safe_load((repo / "compiled/arrivals-japan/dvc.lock").read_text())
    recorded = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}
    for output in ("models/arrivals-japan/model.skops", "reports/arrivals-japan/predictions.parquet"):
        assert _md5(repo / output) == recorded[output], output
    metrics = "reports/arrivals-japan/metrics.json"
    assert (repo / metrics).read_text() == (PROJECT / metrics).read_text()
