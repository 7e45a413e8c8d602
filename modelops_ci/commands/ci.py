"""`modelops-ci ci`: the job CI runs on every commit, runnable the same way on a laptop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from modelops_ci.commands.compile import compile_repo
from modelops_ci.commands.validate import validate, warnings


def run_ci(root: Path) -> Iterator[str]:
    """Validate, then check the compiled pipeline; yields progress lines, raises on failure."""
    space = validate(root)
    space.raise_problems()
    yield f"validate: {len(space.files)} file(s), {len(space.pipelines)} pipeline(s) OK"
    yield from (f"warning: {warning}" for warning in warnings(space))
    compiled = compile_repo(root, check=True, space=space)
    yield f"compile --check: {len(compiled.pipelines)} pipeline(s) fresh"
    from modelops_ci.commands.run import current_verdicts, run
    from modelops_ci.report.console import summary_table

    if compiled.pipelines:
        yield summary_table(run(root, run_all=True))
    from modelops_ci.gates import verdict as verdicts

    results = current_verdicts(root)
    yield from verdicts.lines(results)
    if results:
        yield from _reports(root, [v.pipeline for v in results])
    verdicts.enforce(results)


def _reports(root: Path, pipelines: list[str]) -> Iterator[str]:
    """Reports for people; on GitHub Actions the summary also goes to the job summary page."""
    from modelops_ci.commands.report import report
    from modelops_ci.github.reporters import REPORTERS

    written = report(root, pipelines).written
    yield f"reports: {', '.join(str(p.relative_to(root.resolve())) for p in written)}"
    for reporter in REPORTERS.values():
        yield from reporter(root.resolve(), os.environ)
