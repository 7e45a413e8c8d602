"""Shared fixtures: a pinned git identity and HOME, example repos in tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_ci import numerics
from tests.helpers.repos import copy_example, isolate

# The tests compute some figures in this process and compare them with the step processes' figures,
# so this process selects the same kernels as those do, before any test loads NumPy.
numerics.pin_portable_kernels()


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist (`-n`), each module's tests run on one worker (`--dist loadscope`, unless a `--dist`
    is given), so what its module-scoped fixtures set up (a trained repo, a workflow run, a server) is
    made once, not once per worker."""
    config.addinivalue_line("markers", "shared_setup: the module's tests share a long set-up; run it first")
    if any(arg.startswith("--dist") for arg in config.invocation_params.args):
        return
    if config.getoption("dist", "no") == "load":  # what `-n` sets when no --dist is given
        config.option.dist = "loadscope"
        config.option.loadscopereorder = False  # keep the order below, not the largest module first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with a long shared set-up first: each is one long unit of work, and one started last
    would leave the other workers idle while it runs."""
    items.sort(key=lambda item: item.get_closest_marker("shared_setup") is None)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config leaks in: own HOME, fixed git identity, no GIT_* from the caller."""
    isolate(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture(autouse=True)
def _forget_mlflow_tracking_uri() -> Iterator[None]:
    """A test that calls mlflow.set_tracking_uri must not point later tests at its store: MLflow keeps
    it in a module global and in os.environ, where the `run` of a later module's set-up would find it."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    for module, name in (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                         ("mlflow.tracking._model_registry.utils", "_registry_uri")):
        state = sys.modules.get(module)
        if state is not None and hasattr(state, name):
            setattr(state, name, None)


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A copy of this project's example specs and policies in a fresh directory (no git)."""
    return copy_example(tmp_path / "repo")


@pytest.fixture
def empty_repo(tmp_path: Path) -> Iterator[Path]:
    """An empty repository folder with pipelines/ and policies/."""
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "policies").mkdir()
    yield repo
