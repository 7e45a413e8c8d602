from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run_cli


def test_example_repo_validates(example_repo: Path) -> None:
    result = run_cli("validate", "-C", example_repo)
    assert result.exit_code == 0, result.stderr
    assert "7 pipeline(s) (employment: 148 series)" in result.stdout
