"""`modelops-ci report`: this commit's verdicts as report.md, report.html and reports/summary.md."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modelops_ci.report.pages import Rendered, render_current


def report(root: Path, pipelines: Iterable[str] = ()) -> Rendered:
    """Render each pipeline's gates.json that is this commit's verdict; a pipeline with a missing
    or stale one is refused (its rendered pages removed), for the caller to list and enforce."""
    return render_current(root.resolve(), pipelines)
