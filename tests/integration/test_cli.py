"""The CLI's wiring: help on everything, version, and the one exit-code table."""

from __future__ import annotations

from pathlib import Path

from modelops_ci import __version__
from tests.helpers.cli import run_cli, run_exe


def test_version_from_the_installed_command() -> None:
    result = run_exe("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"modelops-ci, version {__version__}"


def test_usage_error_exits_2() -> None:
    result = run_exe("validate", "--no-such-option")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_unknown_command_exits_2() -> None:
    result = run_exe("valdate")
    assert result.exit_code == 2
    assert "validate" in result.stderr  # click suggests the close command


def test_ci_validates_checks_and_runs_then_fails_when_stale(ml_repo: Path) -> None:
    result = run_cli("ci", "-C", ml_repo)
    assert result.exit_code == 0, result.stderr
    assert "validate: 2 file(s), 2 pipeline(s) OK" in result.stdout
    assert "compile --check: 2 pipeline(s) fresh" in result.stdout
    assert "8 of 8 stage(s) ran" in result.stdout
    spec = ml_repo / "pipelines" / "loans.yaml"
    spec.write_text(spec.read_text().replace("C: 1.0", "C: 0.5"))
    stale = run_cli("ci", "-C", ml_repo)
    assert stale.exit_code == 1
    assert "+    C: 0.5" in stale.stderr
    assert "stage(s) ran" not in stale.stdout, "a stale compile stops ci before running anything"


def test_ci_stops_at_an_invalid_spec(ml_repo: Path) -> None:
    (ml_repo / "pipelines" / "loans.yaml").write_text("apiVersion: modelops/v1\nkind: Pipeline\n")
    result = run_cli("ci", "-C", ml_repo)
    assert result.exit_code == 2
    assert "pipelines/loans.yaml:1:1: missing required key 'metadata'" in result.stderr
