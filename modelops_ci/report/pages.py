"""The pages `modelops-ci report` writes: each pipeline's report.md and report.html and the
repo-level reports/summary.md, from the gates reports that are this commit's verdicts.

words.py says what a report says; markdown.py and html.py say it in their format (each page a
reporter in PAGES); this module picks the reports and writes the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelops_ci.errors import UserError
from modelops_ci.gates.verdict import GatesReport, Verdict, load
from modelops_ci.layout import Layout
from modelops_ci.report import html, markdown
from modelops_ci.report.load import Inputs, discover, read_inputs


class Page(Protocol):
    """A format of one pipeline's report: the text of reports/<p>/<file name>."""

    def __call__(self, report: GatesReport, inputs: Inputs, *, generated: str | None = None) -> str: ...


PAGES: dict[str, Page] = {"report.md": markdown.page, "report.html": html.page}


@dataclass(frozen=True)
class Current:
    """The gates reports that are this commit's verdicts, and the pipelines that have none."""

    reports: list[GatesReport]
    refused: list[Verdict]


def current(root: Path, pipelines: Iterable[str] = ()) -> Current:
    """Each gated pipeline's gates.json (or the named ones') if it was produced for this commit's
    inputs (verdicts.why_stale); a pipeline whose report is missing or stale is refused, with why.
    A gates.json of a pipeline that is not compiled is refused too: nothing binds it to the commit."""
    from modelops_ci.gates.verdict import gated_pipelines, read_current

    compiled = gated_pipelines(root)
    names = list(pipelines) or sorted({*compiled, *discover(root)})
    reports, refused = [], []
    for name in names:
        verdict = read_current(root, name) if name in compiled else _uncompiled(root, name)
        report = None if verdict.stale else load(root / Layout(name).gates)
        if report is not None and report.pipeline != name:
            verdict = Verdict(name, None, stale=f"{Layout(name).gates} is the report of '{report.pipeline}'")
        if report is None or verdict.stale:
            refused.append(verdict)
        else:
            reports.append(report)
    return Current(reports, refused)


def _uncompiled(root: Path, name: str) -> Verdict:
    return Verdict(name, None, stale=f"'{name}' is not a compiled pipeline with gates: run `modelops-ci compile`, "
                                   f"then `modelops-ci run {name}`")


def render_current(root: Path, pipelines: Iterable[str] = (), *, generated: str | None = None) -> Rendered:
    """`modelops-ci report`: render this commit's verdicts, and remove the rendered reports of a
    pipeline that has none (they would show a verdict the commit does not have)."""
    found = current(root, pipelines)
    if not found.reports and not found.refused:
        raise UserError("no reports/<pipeline>/gates.json to render: run the pipelines first (`modelops-ci run`)")
    for verdict in found.refused:
        for page in PAGES:
            (root / Layout(verdict.pipeline).reports / page).unlink(missing_ok=True)
    named = [(report.pipeline, report) for report in found.reports]
    written = _write(root, named, found.refused, generated)
    return Rendered(written, found.refused)


@dataclass(frozen=True)
class Rendered:
    written: list[Path]
    refused: list[Verdict]


def render_reports(root: Path, pipelines: Iterable[str] = (), *, generated: str | None = None) -> list[Path]:
    """Write report.md and report.html for each pipeline (default: every reports/*/gates.json)
    and reports/summary.md over them, whatever commit the reports were made for (render_current
    checks that); return the written paths.

    `generated` (e.g. a timestamp or commit) is printed in the footers; without it the output
    depends on the inputs only, so an unchanged pipeline renders byte-identical reports.
    """
    names = list(pipelines) or discover(root)
    if not names:
        raise UserError("no reports/<pipeline>/gates.json to render: run the pipelines first (`modelops-ci run`)")
    return _write(root, [(name, load(root / Layout(name).gates)) for name in names], [], generated)


def _write(root: Path, named: list[tuple[str, GatesReport]], refused: list[Verdict],
           generated: str | None) -> list[Path]:
    from modelops_ci.fsutil import write_atomic

    written: list[Path] = []
    for name, report in named:
        layout = Layout(name)
        inputs = read_inputs(root, layout)
        for file, page in PAGES.items():
            path = root / layout.reports / file
            write_atomic(path, page(report, inputs, generated=generated))
            written.append(path)
    summary = root / "reports" / "summary.md"
    write_atomic(summary, markdown.summary([report for _, report in named], generated=generated, refused=refused))
    written.append(summary)
    return written
