"""Options every command group shares, defined once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

REPO_HELP = "Repository root (default: the current directory)."


def repo_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`-C/--repo PATH`: run the command on another repository."""
    return click.option("-C", "--repo", "repo", type=click.Path(file_okay=False, path_type=Path), default=Path(),
                        show_default=False, help=REPO_HELP)(func)
