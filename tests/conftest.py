"""Shared fixtures: a pinned git identity and HOME, example repos in tmp_path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_ci import numerics
from tests.helpers.repos import copy_example, isolate

# The tests compute some figures in this process and compare them with the step processes' figures,
# so this process selects the same kernels as those do, before any test loads NumPy.
numerics.pin_portable_kernels()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config leaks in: own HOME, fixed git identity, no GIT_* from the caller."""
    isolate(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture(autouse=True)
def _forget_mlflow_tracking_uri() -> Iterator[None]:
    """A test that calls mlflow.set_tracking_uri must not point later tests at its store."""
    yield
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
