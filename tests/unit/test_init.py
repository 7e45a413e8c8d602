"""`modelops-ci init` refusing a file where the repository folder should be."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run_cli


def test_init_on_a_file_is_a_user_error(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    result = run_cli("init", target)
    assert result.exit_code == 2
    assert "is a file" in result.stderr
