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


def test_the_scaffolds_pre_push_hook_is_this_repositorys() -> None:
    """init writes the hook from package data; hooks/pre-push is the one this repository uses itself."""
    from importlib import resources

    from tests.helpers.paths import PROJECT

    shipped = resources.files("modelops_ci").joinpath("starter", "hooks", "pre-push").read_bytes()
    assert shipped == (PROJECT / "hooks" / "pre-push").read_bytes(), "copy hooks/pre-push to modelops_ci/starter/hooks/"
