"""`modelops-ci ci`: the job CI runs on every commit, runnable the same way on a laptop."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

from modelops_ci.commands.compile import Compiled, compile_repo
from modelops_ci.commands.validate import validate, warnings


def run_ci(root: Path, *, keep_going: bool = True, changed: bool = False, base: str | None = None,
           merge_shards: int | None = None) -> Iterator[str]:
    """Validate, check the compiled pipeline, run it with its gates, write the reports; yields what
    to print, raises on failure (after running every pipeline it can, with `keep_going`).

    `changed`: first pull what the last run pushed and say what changed (only that runs again);
    `base`: run only the pipelines whose files changed since that commit (no DVC remote needed);
    `merge_shards`: the merge job of a matrix of that many shards, whose series are put in place
    before the run (which then recomputes none of them)."""
    compiled = yield from _checked(root)
    from modelops_ci.commands import shards
    from modelops_ci.commands.run import current_verdicts, enforce, run
    from modelops_ci.executor.outcome import RunReport
    from modelops_ci.report.console import summary_table, verdict_line

    chosen: list[str] = []
    if base is not None:
        found = shards.changes(root, base=base)
        yield from found.lines()
        chosen = found.units()
    elif changed or merge_shards is not None:
        yield from shards.pull_outputs(root, list(compiled.pipelines))
        found = shards.changes(root)
        yield from found.lines()
        if merge_shards is not None:
            yield from shards.restore_shards(root, merge_shards, found)
    ran = RunReport()
    if compiled.pipelines and (base is None or chosen):
        ran = run(root, chosen, run_all=base is None, keep_going=keep_going)
        yield summary_table(ran)
    from modelops_ci.gates import verdict as verdicts

    results = current_verdicts(root)
    yield from verdicts.lines(results)
    if results:
        yield from _reports(root, [v.pipeline for v in results])
    verdict = verdict_line(ran, results)
    if verdict:
        yield verdict
    enforce(ran, results)


def run_shard(root: Path, shard: str) -> Iterator[str]:
    """One job of the CI matrix: compute this shard's share of the changed series, push it."""
    from modelops_ci.commands import shards
    from modelops_ci.executor.shards import parse_shard

    chosen = parse_shard(shard)
    yield from _checked(root)
    yield from shards.run_shard(root, chosen)


def _checked(root: Path) -> Generator[str, None, Compiled]:
    space = validate(root)
    space.raise_problems()
    yield f"validate: {len(space.files)} file(s), {space.describe()} OK"
    yield from (f"warning: {warning}" for warning in warnings(space))
    compiled = compile_repo(root, check=True, space=space)
    yield f"compile --check: {len(compiled.pipelines)} pipeline(s) fresh"
    return compiled


def _reports(root: Path, pipelines: list[str]) -> Iterator[str]:
    """Reports for people; on GitHub Actions the summary also goes to the job summary page."""
    from modelops_ci.commands.report import report
    from modelops_ci.github.reporters import REPORTERS

    written = report(root, pipelines).written
    summary = next((p for p in written if p.name == "summary.md"), None)
    pages = "report page" if len(written) == 1 else "report pages"
    where = f"; the summary is {summary.relative_to(root.resolve())}" if summary else ""
    yield f"reports: {len(written)} {pages} written{where}"
    for reporter in REPORTERS.values():
        yield from reporter(root.resolve(), os.environ)
