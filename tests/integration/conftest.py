"""Fixtures of the integration tier: repos that git and DVC have been run in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.repos import make_ml_repo


@pytest.fixture
def ml_repo(tmp_path: Path) -> Path:
    return make_ml_repo(tmp_path / "ml")
