"""The CLI's wiring: help on everything, version, and the one exit-code table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from modelops_ci.cli.main import cli
from modelops_ci.errors import ModelopsError
from tests.helpers.cli import run_cli

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
