"""The registry's tag records read back whole, and help text on every registry command and option."""

from __future__ import annotations

import click

from modelops_ci.cli.main import cli

# -- the registry's state, as GTO replays it ------------------------------------------------------


def test_read_with_messages_parses_every_record() -> None:
    first = ["a", "tag", "c1", "1", "o1", "T <t@x>", "line one\nline two\n"]
    records = "\0".join(first) + "\0\n" + "\0".join(["b", "tag", "c2", "2", "o2", "U <u@x>", "x"]) + "\0\n"
    from modelops_ci.registry.tags import _records

    assert [r[0] for r in _records(records, messages=True)] == ["a", "b"]
    assert next(iter(_records(records, messages=True)))[6] == "line one\nline two\n"


# -- the CLI's own contract ------------------------------------------------------------------------


def _commands(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for name in ("register", "promote", "registry", "audit"):
        command = group.commands[name]
        found.append(command)
        if isinstance(command, click.Group):
            found += list(command.commands.values())
    return found


def test_every_registry_command_and_option_has_help() -> None:
    for command in _commands(cli):
        assert command.help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.name}"
    read_commands = {"show", "history", "audit", "sync-mlflow"}
    for command in _commands(cli):
        if command.name in read_commands:
            assert any("--json" in p.opts for p in command.params if isinstance(p, click.Option)), command.name
