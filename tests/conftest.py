"""Shared fixtures: a pinned git identity and HOME, example repos in tmp_path, a CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_ci import numerics
from modelops_ci.cli.main import main
from modelops_ci.offline import QUIET_ENV

# The tests compute some figures in this process and compare them with the step processes' figures,
# so this process selects the same kernels as those do, before any test loads NumPy.
numerics.pin_portable_kernels()

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("pipelines", "policies")
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config leaks in: own HOME, fixed git identity, no GIT_* from the caller."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(autouse=True)
def _forget_mlflow_tracking_uri() -> Iterator[None]:
    """A test that calls mlflow.set_tracking_uri must not point later tests at its store."""
    yield
    for module, name in (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                         ("mlflow.tracking._model_registry.utils", "_registry_uri")):
        state = sys.modules.get(module)
        if state is not None and hasattr(state, name):
            setattr(state, name, None)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None) -> Result:
    """Run the CLI in-process through its real entry point and top-level error handler."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def run_exe(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the installed `modelops-ci` as a user would, in a subprocess."""
    proc = subprocess.run([str(BIN / "modelops-ci"), *[str(a) for a in args]], cwd=cwd,
                          capture_output=True, text=True, check=False, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A copy of this project's example specs and policies in a fresh directory (no git)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for part in EXAMPLE_PARTS:
        shutil.copytree(PROJECT / part, repo / part)
    return repo


@pytest.fixture
def empty_repo(tmp_path: Path) -> Iterator[Path]:
    """An empty repository folder with pipelines/ and policies/."""
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "policies").mkdir()
    yield repo


def write(repo: Path, relative: str, text: str) -> Path:
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


LOANS_SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: loans
  labels: {domain: test}
spec:
  task: classification
  data:
    source: {path: data/raw/loans.csv}
    target: {column: default, positive: "yes"}
    features:
      numeric: [income, debt, age]
      categorical: [region]
    sensitive: [region, {derive: age_band, from: age, bins: [0, 40, 120]}]
  split: {kind: stratified, test_size: 0.3, seed: 7}
  model:
    estimator: sklearn.linear_model.LogisticRegression
    params: {C: 1.0, max_iter: 500}
  metrics: [roc_auc, accuracy, brier]
"""

SALES_SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: sales
spec:
  task: forecast
  data:
    source: {path: data/raw/sales.csv}
    time: quarter
    target: {column: units}
  split: {kind: temporal, test_periods: 4}
  model: {estimator: sklearn.linear_model.Ridge, params: {alpha: 1.0}, lags: [1, 4], season: 4}
  metrics: [mae, smape, mase]
"""


def loans_csv(rows: int = 400, seed: int = 0) -> str:
    """A small, deterministic credit table with a real signal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(1)
    debt = rng.normal(20, 8, rows).round(1)
    age = rng.integers(19, 75, rows)
    region = rng.choice(["north", "south", "east"], rows)
    risk = 0.08 * debt - 0.05 * income + rng.normal(0, 1, rows)
    default = np.where(risk > np.quantile(risk, 0.7), "yes", "no")
    lines = ["income,debt,age,region,default"]
    rows_ = zip(income, debt, age, region, default, strict=True)
    lines += [",".join(str(v) for v in row) for row in rows_]
    return "\n".join(lines) + "\n"


def sales_csv(years: int = 10) -> str:
    import math

    lines = ["quarter,units"]
    for index in range(years * 4):
        year, quarter = 2010 + index // 4, index % 4 + 1
        units = 100 + 3 * index + 15 * math.sin(2 * math.pi * quarter / 4) + (index * 7 % 5)
        lines.append(f"{year} Q{quarter},{units:.1f}")
    return "\n".join(lines) + "\n"


def make_ml_repo(repo: Path) -> Path:
    """A git + DVC repo with two small pipelines on CSV data, compiled and committed."""
    from modelops_ci.commands.init import DVC_CONFIG

    repo.mkdir(parents=True, exist_ok=True)
    git("init", "-q", cwd=repo)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / ".dvc" / "config").write_text(DVC_CONFIG)
    write(repo, ".gitignore", ".modelops/\n")
    write(repo, "data/raw/loans.csv", loans_csv())
    write(repo, "data/raw/sales.csv", sales_csv())
    write(repo, "pipelines/loans.yaml", LOANS_SPEC)
    write(repo, "pipelines/sales.yaml", SALES_SPEC)
    assert run_exe("compile", cwd=repo).exit_code == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "pipelines", cwd=repo)
    return repo


@pytest.fixture
def ml_repo(tmp_path: Path) -> Path:
    return make_ml_repo(tmp_path / "ml")
