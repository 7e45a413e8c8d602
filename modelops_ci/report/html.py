"""gates.json as one self-contained HTML page: verdict banner in plain words, then each gate's
statistics and plots (PNG as data: URIs), then the model on the hold-out. No external URL, no
script; a Content-Security-Policy forbids loading anything, in case escaping ever missed."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape

from modelops_ci.gates.result import SEVERITY, Check, GateResult
from modelops_ci.gates.verdict import GatesReport
from modelops_ci.layout import Layout
from modelops_ci.report import plots
from modelops_ci.report.family import (
    Ranked,
    Scale,
    estimate,
    headroom_text,
    metric_label,
    policy,
    ranked,
    rule_text,
    scales,
)
from modelops_ci.report.figures import (
    ADVERSE_GROUP_HEADER,
    ADVERSE_SUMMARY_HEADER,
    adverse_tables,
    drift_pictured,
    group_rows,
    parity_floor,
)
from modelops_ci.report.format import bound_text, capitalised, clip, interval, num, p_value_text, rate_title
from modelops_ci.report.load import Inputs
from modelops_ci.report.words import (
    Finding,
    adverse_sentences,
    because,
    drifted,
    findings,
    ordered_checks,
    other_findings,
    verdict_title,
)

MAX_ROWS = 2_000
MAX_DRIFT_PLOTS = 12
QUIET_DRIFT_PLOTS = 3
MAX_FAIRNESS_PLOTS = 8
MAX_RAW = 20_000
MAX_FINDINGS = 10
CURVE_TITLES = {"roc": "ROC curve", "precision_recall": "Precision-recall curve", "calibration": "Calibration",
                "residuals": "Residuals", "forecast": "Forecast vs actual"}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:0;color:#1f2328;background:#fff;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:8px 28px 48px}
.banner{padding:28px 36px;color:#fff}
.banner.pass{background:#1a7f37}.banner.fail{background:#cf222e}
.banner h1{margin:0 0 10px;font-size:32px}
.banner .headline{font-size:21px;margin:0 0 12px;max-width:1100px}
.banner .meta{margin:0;font-size:14px;opacity:.9}
h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
.plain{font-size:17px}
.stats{color:#57606a;font-size:14px}
.badge{display:inline-block;min-width:44px;text-align:center;padding:1px 8px;border-radius:10px;
font-size:12px;font-weight:bold;color:#fff;vertical-align:middle}
.badge.pass{background:#1a7f37}.badge.warn{background:#9a6700}.badge.fail{background:#cf222e}
.badge.error{background:#82071e}
table{border-collapse:collapse;width:100%;font-size:14px;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.figures{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:8px 20px;margin:12px 0}
figure{margin:0}
figure img{max-width:100%;height:auto;border:1px solid #d0d7de}
.findings{margin:0 0 10px;padding-left:22px}
details{margin:6px 0}
summary{cursor:pointer;color:#57606a}
figcaption{font-size:13px;color:#57606a}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;max-height:400px}
footer{color:#57606a;font-size:13px;margin-top:40px}
table.series td{padding:2px 8px}
svg.spark{display:block}
.filter label{margin-right:12px;cursor:pointer}
body:has(#show-failed:checked) tr.series.pass,body:has(#show-passed:checked) tr.series.fail{display:none}
"""


def render(report: GatesReport, inputs: Inputs | None = None, *, generated: str | None = None) -> str:
    """The pipeline's report as one HTML page that needs nothing else to display."""
    inputs = inputs or Inputs({}, {})
    body = _family_body(report, inputs) if report.family else _pipeline_body(report, inputs)
    body = [_banner(report), "<main>", *body, _footer(report, generated), "</main>"]
    title = f"{report.pipeline}: {verdict_title(report)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(clip(title, 200))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(part for part in body if part) + "\n</body>\n</html>\n")


def page(report: GatesReport, inputs: Inputs, *, generated: str | None = None) -> str:
    """reports/<p>/report.html: the whole report, with the hold-out's metrics and plots."""
    return render(report, inputs, generated=generated)


def _pipeline_body(report: GatesReport, inputs: Inputs) -> list[str]:
    found = findings(report)
    # The sections of the gates that need attention come first; the overview keeps the policy's order.
    sections = sorted(zip(report.gates, found, strict=True), key=lambda pair: -SEVERITY[pair[1].status])
    return [_attention(found), _overview(found), *(_gate(gate, finding) for gate, finding in sections),
            _holdout(inputs)]


def _family_body(report: GatesReport, inputs: Inputs) -> list[str]:
    """The family's rule, its series worst first, its metrics across the series (no gate sections:
    each series' gates are in its row, its full results in reports/<family>/series/<name>/)."""
    return [_family_rule(report), _series(report), _family_metrics(inputs)]


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(status.upper())}</span>'


def _banner(report: GatesReport) -> str:
    status = "pass" if report.passed else "fail"
    policies = ", ".join(report.policies) or "none"
    what = "Pipeline" if report.series is None else f"A family of {len(report.series):,} series:"
    return (f'<header class="banner {status}">\n<h1>{escape(verdict_title(report))}</h1>\n'
            f'<p class="headline">{escape(clip(because(report), 800))}.</p>\n'
            f'<p class="meta">{what} <b>{escape(clip(report.pipeline, 100))}</b> · '
            f"governed by {escape(clip(policies, 300))}</p>\n</header>")


def _attention(found: list[Finding]) -> str:
    blocking = [f for f in found if f.blocks]
    review = [f for f in found if not f.blocks and f.status != "pass"]
    parts = []
    for title, items in (("Blocking", blocking), ("To review (does not block)", review)):
        if items:
            listed = "".join(f"<li>{_badge(f.status)} <b>{escape(f.title)}</b>: {escape(capitalised(f.text))}</li>\n"
                             for f in items)
            parts.append(f"<h2>{title}</h2>\n<ul>\n{listed}</ul>")
    return "\n".join(parts)


def _overview(found: list[Finding]) -> str:
    if not found:
        return "<p>No gates are required for this pipeline.</p>"
    rows = "".join(f"<tr><td>{escape(f.title)}{' (advisory)' if f.advisory else ''}</td><td>{_badge(f.status)}</td>"
                   f"<td>{escape(capitalised(f.text))}</td></tr>\n" for f in found)
    return ("<h2>Gates</h2>\n<table>\n<tr><th>Gate</th><th>Result</th><th>In plain words</th></tr>\n"
            f"{rows}</table>")


def _gate(gate: GateResult, finding: Finding) -> str:
    anchor = escape(f"gate-{gate.gate}")
    facts = _statistics(gate)
    figures = [f for f in _gate_figures(gate) if f]
    more = other_findings(gate)
    parts = [f'<section id="{anchor}">',
             f"<h2>{_badge(gate.status)} {escape(finding.title)}{' (advisory)' if finding.advisory else ''}</h2>",
             f'<p class="plain">{escape(capitalised(finding.text))}.</p>',
             '<p class="stats">Also:</p>\n<ul class="findings">\n' + "".join(
                 f"<li>{escape(capitalised(clip(text, 1000)))}.</li>\n" for text in more[:MAX_FINDINGS]) + "</ul>"
             if more else "",
             f'<p class="stats">{" · ".join(facts)}</p>' if gate.reason != finding.text or len(facts) > 1 else "",
             '<div class="figures">\n' + "\n".join(figures) + "\n</div>" if figures else "",
             _adverse(gate) if gate.gate == "fairness" else "", _checks(gate), _groups(gate), _raw(gate),
             "</section>"]
    return "\n".join(part for part in parts if part)


def _statistics(gate: GateResult) -> list[str]:
    facts = [f"Statistics: {escape(clip(gate.reason, 4000))}"]
    for value, shown in ((gate.confidence, "confidence {:.0%}"), (gate.alpha, "alpha = {:g}"), (gate.n, "n = {:,}")):
        if value is not None:
            facts.append(escape(shown.format(value)))
    return facts


def _gate_figures(gate: GateResult) -> list[str]:
    kind = gate.gate
    if kind == "performance":
        png = plots.metric_intervals(ordered_checks(gate), gate.confidence)
        return [_figure(png, "Each metric's estimate and confidence interval against the policy's bound")]
    if kind == "fairness":
        return _fairness_figures(gate)
    if kind == "drift":
        return _drift_figures(gate)
    return []


def _fairness_figures(gate: GateResult) -> list[str]:
    positive = gate.details.get("positive")
    level = f"{gate.confidence:.0%} " if isinstance(gate.confidence, float) else ""
    figures = []
    for (feature, metric), rows in list(group_rows(gate).items())[:MAX_FAIRNESS_PLOTS]:
        floor = parity_floor(gate, feature, metric, rows)
        title = rate_title(metric, positive)
        caption = (f"{capitalised(title)} per group of {feature}, with {level}confidence intervals"
                   + ("; dashed line: the lowest rate the policy allows" if floor is not None else "")
                   + ("; grey: too few rows to compare" if any(r.get("included") is False for r in rows) else ""))
        figures.append(_figure(plots.group_rates(feature, metric, rows, floor, title=title), caption))
    return figures


def _drift_figures(gate: GateResult) -> list[str]:
    """The drifted features (at most a dozen); if none drifted, the few closest to it."""
    chosen = drift_pictured(gate, MAX_DRIFT_PLOTS, QUIET_DRIFT_PLOTS)
    figures = []
    for check in chosen:
        details = check.details
        if not details.get("kind"):
            what = f"{check.name}: reference (blue) vs current (orange)"
        elif drifted(check):
            what = f"{check.name} changed significantly: reference (blue) vs current (orange)"
        else:
            what = f"{check.name}, among the closest to changing (no feature did): reference (blue) vs " \
                   "current (orange)"
        if "histogram" in details:
            what += "; the outer bins hold the tails"
        figures.append(_figure(plots.drift_feature(check), what))
    return [f for f in figures if f]


def _figure(png: bytes | None, caption: str) -> str:
    if png is None:
        return ""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    text = escape(clip(caption, 300))
    return f'<figure><img src="{source}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _checks(gate: GateResult) -> str:
    checks = ordered_checks(gate)
    if not checks:
        return ""
    rows = []
    for check in checks[:MAX_ROWS]:
        p, n = check.p_value, check.n
        cells = [f"<td>{escape(clip(check.name, 200))}</td>", f"<td>{_badge(check.status)}</td>",
                 f'<td class="num">{num(check.statistic)}</td>',
                 f'<td class="num">{escape(interval(check.ci))}</td>',
                 f"<td>{escape(bound_text(check.threshold))}</td>",
                 f'<td class="num">{escape(p_value_text(p, check.threshold, check.details))}</td>',
                 f'<td class="num">{"" if n is None else f"{n:,}"}</td>',
                 f"<td>{escape(clip(check.reason, 1000))}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>\n")
    more = len(checks) - MAX_ROWS
    note = f"<p>{more:,} more checks, the least severe, are in {escape(gate.gate)}'s JSON.</p>" if more > 0 else ""
    failed = sum(c.status != "pass" for c in checks)
    opened = " open" if failed else ""
    return (f"<details{opened}><summary>{len(checks)} check{'s' if len(checks) > 1 else ''} ({failed} not passed)"
            "</summary>\n<table>\n<tr><th>Check</th><th>Result</th><th>Statistic</th><th>CI</th><th>Policy</th>"
            f"<th>p-value</th><th>n</th><th>Why</th></tr>\n{''.join(rows)}</table>{note}\n</details>")


def _adverse(gate: GateResult) -> str:
    """The adverse outcome (e.g. a denial) by the model beside the same in the data, per view."""
    sentences = adverse_sentences(gate)
    if not sentences:
        return ""
    parts = ['<details open><summary>Adverse outcome: the model against the data</summary>\n<ul class="findings">\n'
             + "".join(f"<li>{escape(capitalised(clip(s, 1000)))}.</li>\n" for s in sentences) + "</ul>"]
    for table in adverse_tables(gate, MAX_ROWS):
        parts.append(f'<p class="stats">{escape(clip(table.caption, 400))}</p>'
                     + _html_table(ADVERSE_SUMMARY_HEADER, table.summary)
                     + _html_table(ADVERSE_GROUP_HEADER, table.groups))
    return "\n".join(parts) + "\n</details>"


def _html_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(clip(cell, 200))}</td>" for cell in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _groups(gate: GateResult) -> str:
    groups = gate.groups or {}
    if not groups:
        return ""
    rows = "".join(f'<tr><td>{escape(clip(name, 200))}</td><td class="num">{count:,}</td></tr>\n'
                   for name, count in list(groups.items())[:MAX_ROWS])
    return f"<details><summary>Rows per group</summary>\n<table>\n<tr><th>Group</th><th>n</th></tr>\n{rows}</table>" \
           "\n</details>"


def _raw(gate: GateResult) -> str:
    details = gate.details
    if not details:
        return ""
    raw = json.dumps(details, indent=1, sort_keys=True, ensure_ascii=False)
    if len(raw) > MAX_RAW:
        raw = raw[:MAX_RAW] + "\n… (cut: the whole of it is in gates.json)"
    return f"<details><summary>Gate details (JSON)</summary>\n<pre>{escape(raw)}</pre>\n</details>"


def _holdout(inputs: Inputs) -> str:
    figures = [_figure(plots.curve(kind, points), CURVE_TITLES.get(kind, kind))
               for kind, points in inputs.plots.items()]
    metrics = {k: v for k, v in sorted(inputs.metrics.items()) if isinstance(v, int | float)}
    if not metrics and not any(figures):
        return ""
    rows = "".join(f'<tr><td>{escape(clip(k, 100))}</td><td class="num">{num(v)}</td></tr>\n'
                   for k, v in metrics.items())
    table = f"<table style=\"width:auto\">\n<tr><th>Metric</th><th>Value</th></tr>\n{rows}</table>" if rows else ""
    drawn = [f for f in figures if f]
    return "\n".join(["<section>", "<h2>The model on the hold-out</h2>",
                      "<p class=\"stats\">Point estimates on the test split (the gates above decide on "
                      "confidence intervals).</p>", table,
                      '<div class="figures">\n' + "\n".join(drawn) + "\n</div>" if drawn else "", "</section>"])


# --- a batched family ----------------------------------------------------------------------------
#
# Every series is listed, worst first, with an inline SVG of its gated metric's CI against the
# threshold: built as text, ~0.4 kB a series, so 1,000 series render in milliseconds where a
# matplotlib PNG each would take minutes. The chart shows what decided the series' verdict, from
# gates.json alone (in git): a reporting job without `dvc pull` has no forecasts to draw.

SPARK_WIDTH, SPARK_HEIGHT = 140, 16
SPARK_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#82071e"}


def _family_rule(report: GatesReport) -> str:
    return (f'<section id="family">\n<h2>{_badge("pass" if report.passed else "fail")} The family\'s rule</h2>\n'
            f'<p class="plain">{escape(capitalised(rule_text(report)))}.</p>\n</section>')


def _series(report: GatesReport) -> str:
    rows = ranked(report)
    failed = sum(not r.series.passed for r in rows)
    shared = scales(rows)
    body = "".join(_series_row(position, row, shared) for position, row in enumerate(rows, start=1))
    return ('<section id="series">\n<h2>Series, worst first</h2>\n'
            '<p class="stats">Failed series first, then by headroom: how far the conservative end of the '
            "gated metric's confidence interval is inside its threshold (a share of it). Chart: the "
            "interval (bar), the estimate (tick) and the threshold (dashed), on one scale per metric.</p>\n"
            + _series_filter(len(rows), failed)
            + '<table class="series">\n<tr><th>#</th><th>Series</th><th>Result</th><th>Gated metric</th>'
            "<th>CI</th><th>Policy</th><th>Headroom</th><th>Chart</th><th>Why</th></tr>\n"
            f"{body}</table>\n</section>")


def _series_filter(total: int, failed: int) -> str:
    """Radio buttons that hide rows by verdict: CSS only (`:has`), as the page allows no script."""
    choices = (("all", f"all ({total:,})", " checked"), ("failed", f"failed ({failed:,})", ""),
               ("passed", f"passed ({total - failed:,})", ""))
    shown = "".join(f'<label><input type="radio" name="show" id="show-{key}"{checked}> {label}</label> '
                    for key, label, checked in choices)
    return f'<p class="filter">Show: {shown}</p>\n'


def _series_row(position: int, row: Ranked, shared: dict[str, Scale]) -> str:
    series, check = row.series, row.check
    status = row.status if not series.passed else "pass"
    verdict = "pass" if series.passed else "fail"
    ci = escape(interval(check.ci)) if check else ""
    chart = _sparkline(check, shared[check.name], status) if check else ""
    why = "" if series.passed else escape(clip(series.reason, 600))
    return (f'<tr class="series {verdict}" id="s-{escape(series.name)}"><td class="num">{position}</td>'
            f"<td>{escape(clip(series.name, 200))}</td><td>{_badge(status)}</td>"
            f"<td>{escape(estimate(row))}</td><td class=\"num\">{ci}</td>"
            f"<td>{escape(policy(row))}</td><td class=\"num\">{escape(headroom_text(row))}</td>"
            f"<td>{chart}</td><td>{why}</td></tr>\n")


def _sparkline(check: Check, scale: Scale, status: str) -> str:
    """The check's CI (bar), estimate (tick) and threshold (dashed line) as a small inline SVG."""
    def x(value: float) -> str:
        return f"{1 + scale.at(value) * (SPARK_WIDTH - 2):.1f}"

    colour = SPARK_COLOURS[status]
    parts = [f'<line x1="0" y1="8" x2="{SPARK_WIDTH}" y2="8" stroke="#d0d7de"/>']
    if check.ci:
        low, high = float(x(check.ci[0])), float(x(check.ci[1]))
        parts.append(f'<rect x="{low:.1f}" y="4" width="{max(high - low, 1):.1f}" height="8" rx="2" '
                     f'fill="{colour}" fill-opacity=".35"/>')
    if check.statistic is not None:
        parts.append(f'<line x1="{x(check.statistic)}" y1="2" x2="{x(check.statistic)}" y2="14" '
                     f'stroke="{colour}" stroke-width="2"/>')
    for bound in (check.threshold or {}).values():
        parts.append(f'<line x1="{x(bound)}" y1="0" x2="{x(bound)}" y2="{SPARK_HEIGHT}" stroke="#cf222e" '
                     'stroke-width="1.5" stroke-dasharray="3 2"/>')
    measure = f"{metric_label(check.name)} {num(check.statistic)} ({interval(check.ci)})"
    label = escape(f"{measure}; policy {bound_text(check.threshold)}")
    return (f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" viewBox="0 0 {SPARK_WIDTH} '
            f'{SPARK_HEIGHT}" role="img"><title>{label}</title>{"".join(parts)}</svg>')


def _family_metrics(inputs: Inputs) -> str:
    """The family's metrics.json: how many series, how many failed, each metric's median and mean."""
    metrics = {k: v for k, v in sorted(inputs.metrics.items()) if isinstance(v, int | float)}
    if not metrics:
        return ""
    rows = "".join(f'<tr><td>{escape(clip(k, 100))}</td><td class="num">{num(v)}</td></tr>\n'
                   for k, v in metrics.items())
    return ('<section>\n<h2>Across the series</h2>\n<p class="stats">Each metric\'s median and mean over the '
            "series' hold-outs (the gates above decide per series, on confidence intervals).</p>\n"
            f'<table style="width:auto">\n<tr><th>Metric</th><th>Value</th></tr>\n{rows}</table>\n</section>')


def _footer(report: GatesReport, generated: str | None) -> str:
    parts = [f"Data: {escape(Layout(report.pipeline).gates)}", f"report version {report.version}"]
    if generated:
        parts.append(f"generated {escape(clip(generated, 100))}")
    return "<footer>" + " · ".join(parts) + "</footer>"
