"""The CLI run two ways: in this process through its entry point, or as the installed executable."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelops_ci.cli.main import main
from tests.helpers.paths import BIN


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None) -> Result:
    """Run the CLI in-process through its real entry point and top-level error handler."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def run_exe(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdin: str | None = None) -> Result:
    """Run the installed `modelops-ci` as a user would, in a subprocess (`stdin`: what a pipe gives it)."""
    proc = subprocess.run([str(BIN / "modelops-ci"), *[str(a) for a in args]], cwd=cwd,
                          capture_output=True, text=True, check=False, env=env, input=stdin)
    return Result(proc.returncode, proc.stdout, proc.stderr)
