"""What CI tells GitHub by itself (`modelops-ci ci`), one reporter per entry of REPORTERS: each
reads the workflow's environment and does nothing outside GitHub Actions. The PR comment is not
among them: it needs a token and a pull request (`modelops-ci github comment`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from modelops_ci.github.annotations import commands, gate_annotations
from modelops_ci.github.summary import append_summary
from modelops_ci.github.workflow import run_url


class Reporter(Protocol):
    """Report the rendered reports under `root` to GitHub; return the lines to print."""

    def __call__(self, root: Path, environ: Mapping[str, str]) -> list[str]: ...


def annotate(root: Path, environ: Mapping[str, str]) -> list[str]:
    """`::error file=...,line=...::` lines point the PR's diff at the threshold behind a failed gate."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return []
    return commands(gate_annotations(root))


def job_summary(root: Path, environ: Mapping[str, str]) -> list[str]:
    """reports/summary.md on the run's summary page."""
    page = environ.get("GITHUB_STEP_SUMMARY")
    summary = root / "reports" / "summary.md"
    if not page or not summary.is_file():
        return []
    append_summary(summary.read_text(encoding="utf-8"), Path(page), link=run_url(environ))
    return []


REPORTERS: dict[str, Reporter] = {"annotations": annotate, "job summary": job_summary}
