"""This project's own pyproject.toml: its [project] table and the names of its requirements."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from tests.helpers.paths import PROJECT


def requirement_name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert found, requirement
    return found.group(0).lower()


def project_table() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    return project
