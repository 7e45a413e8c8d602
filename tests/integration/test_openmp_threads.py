"""A model is fitted on one OpenMP thread, whatever the machine (train.py, series.py): scikit-learn's
HistGradientBoosting records the thread count it fitted with in the model, so a fit on a runner's
every core writes other bytes than the same fit elsewhere. threadpoolctl limits only the libraries
loaded when the limit is entered, so the limit must come after scikit-learn is imported: a limit
entered before the import is no limit (it slipped through once). Only a fresh process, in which
scikit-learn is first imported by the step itself, shows that; so each step runs as its own process.
The count is read from the skops file's schema: nothing is unpickled."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from modelops_ci.layout import Layout
from tests.helpers.cli import run_cli, run_exe
from tests.helpers.data import loans_csv
from tests.helpers.family import FAMILY, FAMILY_SPEC, series_names, write_family
from tests.helpers.repos import write
from tests.helpers.skops_files import recorded_openmp_threads
from tests.helpers.specs import LOANS_SPEC
from tests.helpers.steps import spec, step

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

# A fit outside the limit records this many threads on any runner (one with a single core would
# otherwise record 1 with no limit at all, and the tests would prove nothing there).
UNLIMITED = "4"
LOGISTIC = "    estimator: sklearn.linear_model.LogisticRegression\n    params: {C: 1.0, max_iter: 500}\n"
HGB_CLASSIFIER = "    estimator: sklearn.ensemble.HistGradientBoostingClassifier\n    params: {max_iter: 10}\n"
RIDGE = "    estimator: sklearn.linear_model.Ridge\n"
HGB_REGRESSOR = "    estimator: sklearn.ensemble.HistGradientBoostingRegressor\n    params: {max_iter: 10}\n"


def fresh_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": UNLIMITED, **extra}


def test_the_train_step_fits_hist_gradient_boosting_on_one_thread_in_a_fresh_process(empty_repo: Path) -> None:
    """ingest and split may run here; train, which imports scikit-learn's estimators, may not."""
    assert LOGISTIC in LOANS_SPEC
    write(empty_repo, "data/raw/loans.csv", loans_csv(200))
    spec(empty_repo, LOANS_SPEC.replace(LOGISTIC, HGB_CLASSIFIER))
    step(empty_repo, "ingest")
    step(empty_repo, "split")

    result = run_exe("step", "train", "loans", cwd=empty_repo, env=fresh_env())

    assert result.exit_code == 0, result.stderr
    assert recorded_openmp_threads(empty_repo / Layout("loans").model) == [1]


@pytest.fixture(scope="module")
def hgb_family(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled, never run, three-series family fitting HistGradientBoostingRegressor."""
    repo = tmp_path_factory.mktemp("hgb-family") / "repo"
    write_family(repo, series_names(3))
    assert RIDGE in FAMILY_SPEC
    write(repo, f"pipelines/{FAMILY}.yaml", FAMILY_SPEC.replace(RIDGE, HGB_REGRESSOR))
    compiled = run_cli("compile", cwd=repo)
    assert compiled.exit_code == 0, compiled.stderr
    return repo


def series_threads(repo: Path) -> list[int]:
    models = sorted((repo / Layout(FAMILY).series_models).glob("*/model.skops"))
    assert len(models) == 3, models
    return [count for model in models for count in recorded_openmp_threads(model)]


def test_batched_series_fit_on_one_thread_in_a_fresh_process(hgb_family: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(hgb_family, repo)

    result = run_exe("step", "batch", FAMILY, cwd=repo, env=fresh_env(MODELOPS_JOBS="1"))

    assert result.exit_code == 0, result.stderr
    assert series_threads(repo) == [1, 1, 1]

