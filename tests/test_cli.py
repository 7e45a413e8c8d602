"""The CLI's wiring: help on everything, version, and the one exit-code table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from modelops_ci import __version__
from modelops_ci.cli.main import cli
from modelops_ci.errors import ModelopsError
from tests.helpers.cli import run_cli, run_exe

Named = tuple[tuple[str, ...], click.Command]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[Named]:
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in _commands(cli):
        if not (command.help or "").strip():
            missing.append(" ".join(path))
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    for param in cli.params:
        if isinstance(param, click.Option) and not (param.help or "").strip():
            missing.append(param.opts[0])
    assert not missing, f"no help text: {missing}"
    assert len(list(_commands(cli))) >= 5


@pytest.mark.parametrize("name", ["validate", "compile", "schema", "init", "ci"])
def test_help_of_each_command(name: str) -> None:
    result = run_cli(name, "--help")
    assert result.exit_code == 0
    assert f"Usage: modelops-ci {name}" in result.stdout


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


def test_internal_error_exits_3_with_a_log_and_no_traceback(tmp_path: Path) -> None:
    @cli.command("explode", hidden=True)
    def explode() -> None:
        raise RuntimeError("boom")

    try:
        result = run_cli("explode")
    finally:
        del cli.commands["explode"]
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "Traceback" not in result.stderr
    log = Path(result.stderr.strip().rsplit(" ", 1)[-1])
    assert "Traceback" in log.read_text()
    log.unlink()


def test_an_internal_modelops_error_writes_the_crash_log_too() -> None:
    @cli.command("explode-on-purpose", hidden=True)
    def explode() -> None:
        raise ModelopsError("a state the code should never reach")

    try:
        result = run_cli("explode-on-purpose")
    finally:
        del cli.commands["explode-on-purpose"]
    assert result.exit_code == 3
    assert "internal error: ModelopsError: a state the code should never reach" in result.stderr
    log = Path(result.stderr.strip().rsplit(" ", 1)[-1])
    assert "Traceback" in log.read_text() and "Traceback" not in result.stderr
    log.unlink()


def test_interrupt_exits_130() -> None:
    @cli.command("interrupt", hidden=True)
    def interrupt() -> None:
        raise KeyboardInterrupt

    try:
        result = run_cli("interrupt")
    finally:
        del cli.commands["interrupt"]
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


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
