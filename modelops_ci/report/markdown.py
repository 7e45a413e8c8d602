"""gates.json as GitHub-flavoured markdown for a PR comment or a job summary: verdict first in
plain words, the statistics collapsed in <details>, charts as mermaid (GitHub draws them, so no
image hosting). Everything from data is escaped; the text stays under a byte limit by leaving
out the least severe checks first and saying how many were left out."""

from __future__ import annotations

import heapq
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_ci.gates.result import SEVERITY, Check, GateResult
from modelops_ci.layout import Layout
from modelops_ci.report.family import CLOSEST, Ranked, headroom_text, measured, policy, ranked, rule_text
from modelops_ci.report.figures import (
    ADVERSE_GROUP_HEADER,
    ADVERSE_SUMMARY_HEADER,
    adverse_tables,
    extremes,
    group_rows,
    included,
    parity_floor,
)
from modelops_ci.report.format import (
    bound_text,
    capitalised,
    clip,
    gate_title,
    interval,
    num,
    p_value_text,
    plain_group,
    rate_title,
)
from modelops_ci.report.words import (
    MAX_SENTENCE,
    Finding,
    adverse_sentences,
    because,
    findings,
    headline,
    ordered_checks,
    other_findings,
    verdict_title,
)

DEFAULT_LIMIT = 1_000_000  # bytes: GitHub caps a job summary at 1 MiB per step
PR_COMMENT_LIMIT = 65_536  # GitHub caps a comment body at 65,536 characters (never more than bytes)
if TYPE_CHECKING:
    from modelops_ci.gates.verdict import GatesReport, Verdict
    from modelops_ci.report.load import Inputs

ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "error": "⛔"}
MAX_CELL = 300
MAX_BULLETS = 10
MAX_CHART_GROUPS = 12
MAX_CHARTS = 4
MAX_FLOW_GATES = 20
MIN_FAMILY_SHARE = 8_000  # bytes a failing family's report gets however many pipelines share the summary
MAX_NAMED_REST = 12_000  # bytes kept for naming the pipelines a summary's table has no room for
CHECK_HEADER = ("| Check | Result | Statistic | CI | Policy | p-value | n | Why |\n"
                "|---|---|---|---|---|---|--:|---|")

# Inline markdown that data could trigger: emphasis, links, code, tables, strikethrough, math.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$!])")
# Look-alikes (single angle quotes, full-width % # &) keep a label readable without its syntax.
_MERMAID_UNSAFE = str.maketrans({'"': "'", "`": "'", "<": "\u2039", ">": "\u203a", "%": "\uff05", "#": "\uff03",
                                 "&": "\uff06", "{": "(", "}": ")", "[": "(", "]": ")", ";": ",", "\\": "/"})


def text(value: Any, limit: int = MAX_CELL) -> str:
    """Data as literal markdown text: one line, no markup, no HTML, no @-mention."""
    escaped = html.escape(clip(str(value), limit), quote=False)
    return _no_mentions(_MARKDOWN_SPECIAL.sub(r"\\\1", escaped))


def html_text(value: Any, limit: int = MAX_CELL) -> str:
    """Data inside a raw HTML line (e.g. <summary>), where markdown escapes are not read."""
    return _no_mentions(html.escape(clip(str(value), limit)))


def _no_mentions(value: str) -> str:
    return value.replace("@", "@\u2060")  # a word joiner after @ keeps GitHub from pinging a team


def mermaid_text(value: Any, limit: int = 40) -> str:
    """Data as a quoted mermaid label: no quote, fence, comment, directive or markup characters."""
    return clip(str(value), limit).translate(_MERMAID_UNSAFE)


def size(value: str) -> int:
    return len(value.encode("utf-8"))


# --- one pipeline ------------------------------------------------------------------------------


@dataclass
class _Section:
    """A gate's collapsed block: a frame (always shown) around as many check rows as fit."""

    opening: str
    checks: list[Check]  # worst first
    pipeline: str
    rows: list[str] = field(default_factory=list)

    def frame(self, worst_case: bool = False) -> str:
        """The block; `worst_case`: no row and the longest note, what the rows' budget starts from."""
        shown = [] if worst_case else self.rows
        parts = [self.opening, CHECK_HEADER + "\n" + "\n".join(shown) + "\n" if shown else ""]
        left = len(self.checks) - len(shown)
        if left:
            parts.append(f"\n_{left} more check{'s' if left > 1 else ''} not shown (least severe first): "
                         f"see {text(Layout(self.pipeline).gates)}._\n")
        parts.append("\n</details>\n")
        return "".join(parts)


def render(report: GatesReport, *, limit: int = DEFAULT_LIMIT, level: int = 2,
           generated: str | None = None, every_series: bool = False) -> str:
    """The pipeline's report as markdown of at most `limit` UTF-8 bytes.

    `level` is the heading level of the title (3 when nested in the repo-level summary). A family's
    lists its failed series and the CLOSEST closest to failing, or with `every_series` all of them
    while they fit.
    """
    found = findings(report)
    if report.family:
        return _family_report(report, found, limit, level, generated, every_series)
    top, table = _top(report, found, level), _gate_table(report, found)
    charts, footer = _charts(report), _footer(report, generated)
    sections = [_section(report.pipeline, gate) for gate in report.gates]
    for body in (charts, ""):
        fixed = size(top + table + body + footer) + sum(size(s.frame(worst_case=True)) for s in sections)
        if fixed <= limit:
            _choose(sections, limit - fixed)
            return top + table + body + "".join(s.frame() for s in sections) + footer
    # Too many gates for the limit: keep the verdict and as much of the gate table as fits.
    lines = (top + table).splitlines(keepends=True)
    while lines and size("".join(lines) + footer) > limit:
        lines.pop()
    return "".join(lines) + footer


def page(report: GatesReport, inputs: Inputs, *, generated: str | None = None) -> str:
    """reports/<p>/report.md: the whole report (the hold-out's metrics and plots are the HTML's)."""
    return render(report, generated=generated, every_series=True)


def _top(report: GatesReport, found: list[Finding], level: int) -> str:
    icon = ICONS["pass" if report.passed else "fail"]
    lines = [f"{'#' * level} {icon} {text(report.pipeline, 100)}: {verdict_title(report)}", "",
             f"**{text(headline(report), 800)}.**", ""]
    blocking = [f for f in found if f.blocks][1:]
    advisory = [f for f in found if not f.blocks and f.status != "pass"]
    for title, items in (("Also blocking:", blocking), ("To review (does not block):", advisory)):
        if items:
            lines += [title, *_bullets(items), ""]
    return "\n".join(lines) + "\n"


def _bullets(items: list[Finding]) -> list[str]:
    lines = [f"- {ICONS[f.status]} **{text(f.title, 60)}**: {text(capitalised(f.text), 600)}"
             for f in items[:MAX_BULLETS]]
    if len(items) > MAX_BULLETS:
        lines.append(f"- and {len(items) - MAX_BULLETS} more")
    return lines


def _gate_table(report: GatesReport, found: list[Finding]) -> str:
    if not found:
        return ""
    rows = ["| Gate | Result | In plain words |", "|---|---|---|"]
    for f in found:
        name = text(f.title, 60) + (" (advisory)" if f.advisory else "")
        rows.append(f"| {name} | {ICONS[f.status]} {f.status} | {text(capitalised(f.text), MAX_SENTENCE)} |")
    return "\n".join(rows) + "\n\n"


def _section(pipeline: str, gate: GateResult) -> _Section:
    checks = ordered_checks(gate)
    failed = sum(c.status != "pass" for c in checks)
    counted = f" ({failed} of {len(checks)} checks not passed)" if checks else ""
    summary = html_text(f"{gate_title(gate.gate)}{' (advisory)' if gate.advisory else ''}: "
                        f"{gate.status}{counted}", 200)
    more = other_findings(gate)
    also = "".join(f"- {text(capitalised(f), 600)}\n" for f in more[:MAX_BULLETS])
    opening = (f"<details><summary>{ICONS[gate.status]} {summary}</summary>\n\n"
               + (f"Also:\n\n{also}\n" if also else "") + f"{_gate_statistics(gate)}\n\n"
               + (_adverse(gate) if gate.gate == "fairness" else ""))
    return _Section(opening, checks, pipeline)


def _adverse(gate: GateResult) -> str:
    """The adverse outcome (e.g. a denial) by the model beside the same in the data, per view."""
    sentences = adverse_sentences(gate)
    if not sentences:
        return ""
    parts = ["**Adverse outcome, model against data:**\n\n"
             + "".join(f"- {text(capitalised(s), 600)}\n" for s in sentences[:MAX_CHARTS]) + "\n"]
    for table in adverse_tables(gate, MAX_CHART_GROUPS)[:MAX_CHARTS]:
        parts.append(f"_{text(table.caption, 400)}_\n\n" + _table(ADVERSE_SUMMARY_HEADER, table.summary) + "\n"
                     + _table(ADVERSE_GROUP_HEADER, table.groups)
                     + (f"\n_{table.left_out} more groups in the JSON._\n" if table.left_out else "") + "\n")
    return "".join(parts)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(text(cell, 120) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _gate_statistics(gate: GateResult) -> str:
    facts = [f"**Statistics:** {text(gate.reason, 2000)}"]
    if gate.confidence is not None:
        facts.append(f"confidence {gate.confidence:.0%}")
    if gate.alpha is not None:
        facts.append(f"alpha = {num(gate.alpha)}")
    if gate.n is not None:
        facts.append(f"n = {gate.n:,}")
    groups = gate.groups or {}
    if groups:
        shown = ", ".join(f"{text(k, 60)} ({v:,})" for k, v in list(groups.items())[:20])
        facts.append(f"groups: {shown}" + (f" and {len(groups) - 20} more" if len(groups) > 20 else ""))
    return " · ".join(facts)


def _check_row(check: Check) -> str:
    p, n = check.p_value, check.n
    cells = [text(check.name, 120), f"{ICONS[check.status]} {check.status}", num(check.statistic),
             interval(check.ci), bound_text(check.threshold), p_value_text(p, check.threshold, check.details),
             "" if n is None else f"{n:,}", text(check.reason)]
    return "| " + " | ".join(cells) + " |"


def _choose(sections: list[_Section], budget: int) -> None:
    """Most severe rows first, across gates, while they fit (rendering only those)."""
    queues = [[(-SEVERITY[c.status], g, i) for i, c in enumerate(s.checks)] for g, s in enumerate(sections)]
    for _, g, i in heapq.merge(*queues):
        section = sections[g]
        row = _check_row(section.checks[i])
        cost = size(row) + 1 + (0 if section.rows else size(CHECK_HEADER) + 1)
        if cost > budget:
            break
        section.rows.append(row)
        budget -= cost


def _footer(report: GatesReport, generated: str | None) -> str:
    parts = [f"data: {text(Layout(report.pipeline).gates)}",
             f"full report with plots: {text(Layout(report.pipeline).reports + '/report.html')}"]
    if report.policies:
        parts.insert(0, "policies: " + ", ".join(text(p, 80) for p in report.policies[:10]))
    if generated:
        parts.append(f"generated {text(generated, 80)}")
    return "\n<sub>" + " · ".join(parts) + "</sub>\n"


# --- a batched family ----------------------------------------------------------------------------

SERIES_HEADER = ("| # | Series | Result | Gated metric (CI) | Policy | Headroom | Why |\n"
                 "|--:|---|---|---|---|--:|---|\n")
MAX_NAMED_FAILED = 4_000  # bytes kept for naming the failed series the table has no room for


def _family_report(report: GatesReport, found: list[Finding], limit: int, level: int, generated: str | None,
                   every_series: bool) -> str:
    """The verdict, the family's rule, then its series worst first while they fit."""
    top, footer = _top(report, found, level), _footer(report, generated)
    rule = f"**Family rule:** {text(capitalised(rule_text(report)), 800)}.\n\n"
    budget = limit - size(top + rule + footer)
    if budget < 0:
        return _cut(top + rule, footer, limit)
    return top + rule + _series_table(report, budget, every_series) + footer


def _cut(body: str, footer: str, limit: int) -> str:
    lines = body.splitlines(keepends=True)
    while lines and size("".join(lines) + footer) > limit:
        lines.pop()
    return "".join(lines) + footer


def _series_table(report: GatesReport, budget: int, every_series: bool) -> str:
    """Failed series first (each always named: in a row, else in the line under the table), then
    the passing ones closest to failing; a note says where every series is."""
    rows = ranked(report)
    failed = sum(not r.series.passed for r in rows)
    wanted = rows if every_series else rows[: failed + CLOSEST]
    note = _series_note(report, 0, len(rows))
    room = budget - size(SERIES_HEADER + note) - min(MAX_NAMED_FAILED, failed * 104) - 100
    lines = []
    for position, row in enumerate(wanted, start=1):
        line = _series_row(position, row)
        if size(line) > room:
            break
        lines.append(line)
        room -= size(line)
    table = SERIES_HEADER + "".join(lines) if lines else ""
    unlisted = [r.series.name for r in rows[len(lines):failed]]
    return table + _failed_names(unlisted) + _series_note(report, len(lines), len(rows))


def _series_row(position: int, row: Ranked) -> str:
    status = row.status if not row.series.passed else "pass"
    why = "" if row.series.passed else text(row.series.reason, 300)
    return (f"| {position} | {text(row.series.name, 100)} | {ICONS[status]} {status} | {text(measured(row), 100)} "
            f"| {text(policy(row), 60)} | {headroom_text(row)} | {why} |\n")


def _failed_names(names: list[str]) -> str:
    """The failed series without a row, by name while MAX_NAMED_FAILED allows."""
    if not names:
        return ""
    line = f"\nFailed, not in the table ({len(names)}): "
    named: list[str] = []
    used = size(line) + 40
    for name in names:
        shown = text(name, 100)
        if used + size(shown) + 2 > MAX_NAMED_FAILED:
            break
        named.append(shown)
        used += size(shown) + 2
    unnamed = len(names) - len(named)
    return line + ", ".join(named) + (f" and {unnamed} others" if unnamed else "") + ".\n"


def _series_note(report: GatesReport, listed: int, total: int) -> str:
    page = text(Layout(report.pipeline).reports + "/report.html")
    if listed >= total:
        return f"\n_All {total:,} series, worst first; with a chart each in {page}._\n"
    return (f"\n_{listed:,} of {total:,} series listed, worst first (the failed ones, then those closest to "
            f"failing). Every series, with a chart each, is in {page} (in the CI run's artifacts)._\n")


# --- charts ------------------------------------------------------------------------------------


def _charts(report: GatesReport) -> str:
    blocks = [_gate_flow(report), *_group_rate_charts(report)]
    blocks = [b for b in blocks if b]
    if not blocks:
        return ""
    fenced = "\n".join(f"```mermaid\n{b}```\n" for b in blocks)
    return f"<details><summary>Charts</summary>\n\n{fenced}\n</details>\n\n"


def _gate_flow(report: GatesReport) -> str:
    """Each gate a box coloured by its result, arrows into the verdict (dotted if advisory)."""
    gates = report.gates[:MAX_FLOW_GATES]
    if not gates:
        return ""
    lines = ["flowchart LR"]
    for i, gate in enumerate(gates):
        label = mermaid_text(f"{gate_title(gate.gate)}: {gate.status}"
                             + (" (advisory)" if gate.advisory else ""))
        arrow = "-.->" if gate.advisory else "-->"
        lines.append(f'    g{i}["{label}"]:::{gate.status} {arrow} verdict')
    status = "pass" if report.passed else "fail"
    lines.append(f'    verdict{{{{"{verdict_title(report)}"}}}}:::{status}')
    lines += ["    classDef pass fill:#dafbe1,stroke:#1a7f37,color:#0a3622",
              "    classDef warn fill:#fff8c5,stroke:#9a6700,color:#3b2300",
              "    classDef fail fill:#ffebe9,stroke:#cf222e,color:#5c0a0a",
              "    classDef error fill:#ffebe9,stroke:#82071e,color:#5c0a0a,stroke-dasharray:4 2"]
    return "\n".join(lines) + "\n"


def _group_rate_charts(report: GatesReport) -> list[str]:
    """Per-group rates of the fairness gate as bar charts, with the policy's floor as a line."""
    charts = []
    for gate in report.gates:
        if gate.gate != "fairness":
            continue
        positive = gate.details.get("positive")
        for (feature, metric), rows in list(group_rows(gate).items())[:MAX_CHARTS]:
            charts.append(_rate_chart(feature, rate_title(metric, positive), rows,
                                      parity_floor(gate, feature, metric, rows)))
    return charts


def _rate_chart(feature: str, rate: str, rows: list[dict[str, Any]], floor: float | None) -> str:
    shown = extremes(rows, MAX_CHART_GROUPS)
    labels = ", ".join(f'"{mermaid_text(_chart_group(r), 24)}"' for r in shown)
    title = mermaid_text(capitalised(f"{rate} by {feature}" if feature else rate), 60)
    top = max(1.0, *(float(r["value"]) for r in shown))
    lines = ["xychart-beta", f'    title "{title}"', f"    x-axis [{labels}]",
             f'    y-axis "rate" 0 --> {top:.4f}',
             "    bar [" + ", ".join(f"{float(r['value']):.4f}" for r in shown) + "]"]
    if floor is not None:
        lines.append("    line [" + ", ".join(f"{floor:.4f}" for _ in shown) + "]")
    return "\n".join(lines) + "\n"


def _chart_group(row: dict[str, Any]) -> str:
    """A bar's label; a group left out of the disparities (too few rows) says so."""
    name = plain_group(str(row.get("group", "")))
    return name if included(row) else clip(name, 14) + " (too few)"


# --- every pipeline ----------------------------------------------------------------------------


def summary(reports: Iterable[GatesReport], *, limit: int = PR_COMMENT_LIMIT, generated: str | None = None,
            refused: Iterable[Verdict] = ()) -> str:
    """reports/summary.md: every pipeline's verdict in one table, what is not ready first, then the
    reports collapsed while they fit, then the counts. Sized for a PR comment (it is one, and a job
    summary): with many pipelines the rows that do not fit are named in one line, their reports
    left to reports/<pipeline>/. A `refused` pipeline has no verdict for this commit (its report is
    missing or was made for other inputs): it is never ready."""
    reports, refused = sorted(reports, key=lambda r: r.passed), list(refused)
    failing = [r for r in reports if not r.passed]
    icon = ICONS["fail" if failing or refused else "pass"]
    total = len(reports) + len(refused)
    count = f"{total} pipeline{'s' if total != 1 else ''}"
    title = (f"{len(failing) + len(refused)} of {count} not ready for production" if failing or refused
             else f"{'All ' if total > 1 else ''}{count} ready for production")
    head = f"# {icon} {title}\n\n| Pipeline | Verdict | In plain words |\n|---|---|---|\n"
    rows = [_no_verdict_row(verdict) for verdict in refused]
    rows += [f"| {_name_cell(r)} | {ICONS['pass' if r.passed else 'fail']} "
             f"{'ready' if r.passed else 'not ready'} | {text(because(r), 600)} |\n" for r in reports]
    names = [verdict.pipeline for verdict in refused] + [r.pipeline for r in reports]
    counted = f"\n**{title}**{_counts(len(failing), len(refused), len(reports) - len(failing))}\n"
    footer = counted + "\n<sub>" + (f"generated {text(generated, 80)} · " if generated else "") \
        + "one report per pipeline: reports/&lt;pipeline&gt;/report.md and report.html</sub>\n"
    kept = []
    budget = limit - size(head + footer) - 200
    for row in rows:
        if size(row) > budget - MAX_NAMED_REST:
            break
        kept.append(row)
        budget -= size(row)
    rest = _rest(names[len(kept):], MAX_NAMED_REST)
    budget -= size(rest)
    shown = reports[: max(0, len(kept) - len(refused))]
    return head + "".join(kept) + rest + "\n" + _embedded(shown, budget) + footer


def _name_cell(report: GatesReport) -> str:
    """The pipeline's name; a family's with its number of series."""
    if report.series is None:
        return text(report.pipeline, 100)
    return f"{text(report.pipeline, 100)} (a family of {len(report.series):,} series)"


def _counts(failing: int, refused: int, ready: int) -> str:
    if not failing and not refused:
        return ""
    parts = [(failing, "failed a gate"), (refused, "without a verdict for this commit"), (ready, "ready")]
    return ": " + ", ".join(f"{n} {what}" for n, what in parts if n)


def _rest(names: list[str], budget: int) -> str:
    """The pipelines left out of the table, by name while they fit: each has its own report."""
    if not names:
        return ""
    line = f"\nAnd {len(names)} more, each with its report in reports/&lt;pipeline&gt;/: "
    named: list[str] = []
    for name in names:
        if size(line) + sum(size(n) + 2 for n in named) + size(name) > budget - 40:
            break
        named.append(text(name, 100))
    unnamed = len(names) - len(named)
    return line + ", ".join(named) + (f" and {unnamed} others" if unnamed else "") + ".\n"


def _no_verdict_row(verdict: Verdict) -> str:
    return (f"| {text(verdict.pipeline, 100)} | {ICONS['error']} no verdict for this commit "
            f"| {text(verdict.stale, 600)} |\n")


def _embedded(reports: list[GatesReport], budget: int) -> str:
    """Each pipeline's report, failing ones first, in an equal share of what is left (what one
    leaves unused goes to the next). A family with failed series comes first among its peers and
    gets at least MIN_FAMILY_SHARE: only its report lists them all."""
    ordered = sorted(reports, key=lambda r: (r.passed, not r.failed_series))
    parts, left = [], budget
    for index, report in enumerate(ordered):
        share = left // (len(ordered) - index)
        if report.failed_series:
            share = max(share, min(left // 2, MIN_FAMILY_SHARE))
        wrapper = (f"<details><summary>{ICONS['pass' if report.passed else 'fail']} "
                   f"{html_text(report.pipeline, 100)}: {html_text(verdict_title(report))}</summary>\n\n",
                   "\n</details>\n\n")
        room = share - size("".join(wrapper))
        if room < 2_000:
            continue
        part = wrapper[0] + render(report, limit=room, level=3) + wrapper[1]
        parts.append(part)
        left -= size(part)
    return "".join(parts)
