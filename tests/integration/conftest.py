"""Fixtures of the integration tier: repos that git and DVC have been run in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.family_registry import family_template
from tests.helpers.registry import shared_template
from tests.helpers.repos import make_ml_repo


@pytest.fixture
def ml_repo(tmp_path: Path) -> Path:
    return make_ml_repo(tmp_path / "ml")


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained, committed registry repo (built once per session and worker); tests clone it."""
    return shared_template(tmp_path_factory)


@pytest.fixture(scope="module")
def family_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained, committed batched family repo (built once per session and worker); tests copy it."""
    return family_template(tmp_path_factory)
