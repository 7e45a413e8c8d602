"""The `modelops-ci` group and its one error handler: every outcome becomes a documented exit code,
and an internal error a short message plus a crash log.

The commands are wired in cli/pipeline.py, cli/registry.py and cli/github.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import click

from modelops_ci import __version__, numerics, offline
from modelops_ci.cli import github as cli_github
from modelops_ci.cli import pipeline as cli_pipeline
from modelops_ci.cli import registry as cli_registry
from modelops_ci.cli import serving as cli_serving
from modelops_ci.errors import (
    ERROR_FILE_ENV,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    DiskFullError,
    ModelopsError,
    disk_full_in,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="modelops-ci",
                      help="Show the version and exit.")
def cli() -> None:
    """GitOps for ML models: specs and policies in git, compiled to DVC, gated and promoted.

    Exit codes: 0 success, 1 a gate or check failed, 2 invalid input or usage,
    3 internal error (a bug), 130 interrupted.
    """


cli_pipeline.register_commands(cli)
cli_registry.register_commands(cli)
cli_github.register_commands(cli)
cli_serving.register_commands(cli)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and turn every outcome into the documented exit code."""
    offline.apply()
    numerics.pin_portable_kernels()
    try:
        cli.main(args=argv, prog_name="modelops-ci", standalone_mode=False)
    except ModelopsError as exc:
        if exc.exit_code == EXIT_INTERNAL and exc.crash_log:  # raised on purpose, still a bug: logged
            sys.exit(_crash(exc))
        _say(exc.render())
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        _record(exc.format_message())
        sys.exit(EXIT_USER_ERROR if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        sys.exit(_crash(exc))
    sys.exit(0)


def _say(message: str) -> None:
    click.echo(message, err=True)
    _record(message)


def _record(message: str) -> None:
    """Also write the error to the file `run` names for a stage's step (errors.ERROR_FILE_ENV)."""
    path = os.environ.get(ERROR_FILE_ENV)
    if not path:
        return
    with contextlib.suppress(OSError), Path(path).open("a", encoding="utf-8") as said:
        said.write(message + "\n")


def _crash(exc: Exception) -> int:
    """Report an internal error briefly; the traceback goes to a log file, not the terminal.

    A full disk met outside our own writes (DVC's cache, a library's file) is still the user's
    to fix, and said as such."""
    full = disk_full_in(exc)
    if full is not None:
        error = DiskFullError(full.filename)
        _say(error.render())
        return error.exit_code
    with tempfile.NamedTemporaryFile("w", prefix="modelops-ci-crash-", suffix=".log",
                                     delete=False) as log:
        traceback.print_exc(file=log)
    kind, value, _ = sys.exc_info()
    name = kind.__name__ if kind else "error"
    _say(f"internal error: {name}: {value}\nThis is a bug in modelops-ci; the traceback is in {log.name}")
    return EXIT_INTERNAL
