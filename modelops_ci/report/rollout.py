"""The roll-out for people: each model's decision in words, its reasons, its step and the intervals
of the step with every metric against its bound, as markdown (a PR body, an incident issue, the
job summary) and as one stand-alone HTML page with a chart per metric and one of the traffic.

Both read what `modelops-ci rollout` hands them: `Outcome.to_json()` per model (commands/rollout.py).
Model names, versions and reasons come from the deployment file and the log: each format escapes
them. The markdown stays under a PR comment's limit however many models and intervals there are:
the most urgent models first, the latest intervals first, and a note says what was left out (never
a table cut in the middle). The page's charts are inline SVG built as text, as the family report's
(report/html.py): no script, no network, and 500 intervals draw in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, TypeGuard

from modelops_ci.report.family import Scale, _scale
from modelops_ci.report.format import capitalised, clip, num
from modelops_ci.report.html import CSP, MAX_ROWS, SPARK_COLOURS, STYLE
from modelops_ci.report.markdown import ICONS, PR_COMMENT_LIMIT, size, text
from modelops_ci.report.plots import CURRENT, FAIL, LEFT_OUT, REFERENCE
from modelops_ci.rollout.analysis import clock, duration, moment

URGENCY = ("abort", "pause", "advance", "promote", "hold", "idle")  # the order models are listed in
ACTION_ICONS = {"advance": "⏩", "promote": "🚀", "hold": "⏳", "pause": "⚠️", "abort": "❌", "idle": "⚪"}
STATUS_ICONS = {**ICONS, "inconclusive": "❔", "skipped": "⚪", "running": "⏳"}
MAX_REASONS = 12
MAX_REASON = 600
REPORT_NOTE = ("every interval, with a chart per metric, is in the HTML report (reports/rollout/, in the run's "
               "artifacts)")


# --- what each metric is and how it reads --------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """How a metric reads: its title, the key of the bound it is judged on, how a value shows."""

    title: str
    side: str  # max | min | alpha | max_drop
    shown: Callable[[float], str]
    log: bool = False  # p-values: on a log scale alpha 0.01 and p 0.5 both show
    least: float | None = 0.0  # the lowest value it can take: the chart's floor
    most: float | None = None  # the highest (a p-value's 1): the chart's ceiling


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _ms(value: float) -> str:
    return f"{value:.3g} ms"


def _p(value: float) -> str:
    return f"p={value:.2g}"


MEASURES = {
    "error_rate": Measure("Error rate", "max", _percent),
    "latency_p99_ms": Measure("p99 latency", "max", _ms),
    "agreement": Measure("Agreement with the champion", "min", _percent),
    "prediction_drift": Measure("Prediction drift", "alpha", _p, log=True, least=None, most=1.0),
    "input_drift": Measure("Share of input features drifted", "max", _percent),
    "performance": Measure("Performance drop on labels", "max_drop", num, least=None),
}


def measure(name: str, bound: dict[str, Any]) -> Measure:
    """The metric's reading; a metric this module does not know reads by its first bound."""
    known = MEASURES.get(name)
    if known is not None:
        return known
    side = next((key for key in ("max", "min", "alpha", "max_drop") if key in bound), "max")
    if side == "alpha":  # a p-value: on a log scale, as prediction drift's
        return Measure(name, side, _p, log=True, least=None, most=1.0)
    return Measure(name, side, num, least=None)


def limit(name: str, bound: dict[str, Any]) -> float | None:
    """The bound's value that decides pass or fail (the drift gate's default share for input drift)."""
    value = bound.get(measure(name, bound).side)
    if value is None and name == "input_drift":
        from modelops_ci.gates.drift import DEFAULT_SHARE

        value = DEFAULT_SHARE
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def bound_text(name: str, bound: dict[str, Any]) -> str:
    """What passes, in symbols: `≤ 2.0%`, `≥ 90.0%`, `fails at p ≤ 0.01`, `drop ≤ 0.05`."""
    reading, value = measure(name, bound), limit(name, bound)
    if value is None:
        return "no bound"
    if reading.side == "alpha":
        return f"fails at p ≤ {value:g}"
    if reading.side == "max_drop":
        return f"drop ≤ {value:g}"
    sign = "≥" if reading.side == "min" else "≤"
    return f"{sign} {reading.shown(value)}"


def value_text(result: dict[str, Any]) -> str:
    value = result.get("value")
    if not _number(value):
        return result["status"] if result["status"] == "skipped" else "n/a"
    return measure(result["name"], result.get("bound") or {}).shown(float(value))


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def metric_names(intervals: list[dict[str, Any]]) -> list[str]:
    """The metrics measured over the step, in the deployment file's order."""
    names: dict[str, None] = {}
    for interval in intervals:
        names.update(dict.fromkeys(m["name"] for m in interval["metrics"]))
    return list(names)


def metric_bound(intervals: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The metric's bound as its results state it (the same for every interval of a step)."""
    for _, result in results(intervals, name):
        return dict(result.get("bound") or {})
    return {}


def results(intervals: list[dict[str, Any]], name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(interval, the metric's result in it) for every interval that measured it."""
    found = []
    for interval in intervals:
        result = next((m for m in interval["metrics"] if m["name"] == name), None)
        if result is not None:
            found.append((interval, result))
    return found


# --- the decision in words -----------------------------------------------------------------------


def headline(model: dict[str, Any]) -> str:
    """The decision in a few words: `advance 10% -> 50%`, `abort: ...`, `hold: 4 min 50 s until ...`."""
    decision, analysis = model["decision"], model["analysis"]
    action = decision["action"]
    weight, after = decision["weight"], decision["next_weight"]
    if action == "advance":
        return f"advance {weight}% -> {after}%"
    if action == "abort":
        failed = _failed_streak(analysis["intervals"])
        return f"abort: {weight}% -> {after}% after {failed} failed interval{'s' if failed != 1 else ''} in a row"
    if action == "hold":
        return _hold(decision, analysis)
    if action == "pause":
        return f"pause at {weight}%: for a person to look"
    if action == "promote":
        return f"promote {analysis['challenger']}: hand it over to the signed promotion"
    if analysis.get("challenger") is None:
        return "idle: no challenger to roll out"
    return f"idle: the challenger is at {weight}%"


def _hold(decision: dict[str, Any], analysis: dict[str, Any]) -> str:
    wait = decision.get("wait_s")
    if not _number(wait):
        return f"hold at {decision['weight']}%"
    until = clock(float(analysis["now"]) + float(wait))
    return f"hold at {decision['weight']}%: {duration(float(wait))} until {until} UTC"


def _failed_streak(intervals: list[dict[str, Any]]) -> int:
    count = 0
    for interval in reversed([i for i in intervals if i["complete"]]):
        if interval["status"] != "fail":
            break
        count += 1
    return count


def facts(model: dict[str, Any]) -> list[tuple[str, str]]:
    """The roll-out's settings and state as (name, value) cells, unescaped."""
    analysis, decision = model["analysis"], model["decision"]
    weight = f"{decision['weight']}%"
    if decision["next_weight"] != decision["weight"]:
        weight += f" -> {decision['next_weight']}%"
    step = analysis.get("step")
    since = analysis.get("since")
    return [("Champion", str(analysis.get("champion") or "none")), ("Challenger", str(analysis.get("challenger"))),
            ("Mode", str(analysis["mode"])), ("Weight", weight),
            ("Step", "none of the steps" if step is None else str(step + 1)),
            ("Step began", moment(float(since)) if _number(since) else "not recorded"),
            ("Interval", duration(float(analysis["interval"]))), ("min_samples", f"{analysis['min_samples']:,}")]


def _urgency(model: dict[str, Any]) -> int:
    action = model["decision"]["action"]
    return URGENCY.index(action) if action in URGENCY else len(URGENCY)


def _counts(models: list[dict[str, Any]]) -> str:
    """`1 abort, 2 hold`, in URGENCY order."""
    actions = [m["decision"]["action"] for m in models]
    return ", ".join(f"{actions.count(a)} {a}" for a in dict.fromkeys(actions))


def _span(interval: dict[str, Any]) -> str:
    return f"{clock(float(interval['start']))}-{clock(float(interval['end']))}"


# --- markdown ------------------------------------------------------------------------------------

MIN_SHARE = 6_000  # bytes a model's section may take however many models share the text
NOTE_ROOM = 400  # bytes kept for the note of what was left out
WRAPPER_ROOM = 200  # bytes left to the caller: the command puts a marker line above an incident's body
LIMIT = PR_COMMENT_LIMIT - WRAPPER_ROOM


def markdown(models: list[dict[str, Any]], limit: int = LIMIT) -> str:
    """The models' roll-outs as markdown of at most `limit` UTF-8 bytes, most urgent first."""
    ordered = sorted(models, key=_urgency)
    footer = f"\n<sub>{text(capitalised(REPORT_NOTE))}.</sub>\n"
    if not ordered:
        return "## Roll-out\n\nNo model of the stage has a challenger: nothing is rolling out.\n" + footer
    top = _overview(ordered, (limit - size(footer)) // 3) if len(ordered) > 1 else ""
    left = limit - size(top + footer) - NOTE_ROOM
    sections: list[str] = []
    for index, model in enumerate(ordered):
        share = min(left, max(left // (len(ordered) - index), MIN_SHARE))
        section = _section(model, share)
        if section is None:
            break
        sections.append(section)
        left -= size(section)
    return top + "".join(sections) + _unshown(len(ordered) - len(sections)) + footer


def _overview(models: list[dict[str, Any]], budget: int) -> str:
    """One row per model while they fit, then how many more."""
    head = f"## Roll-out of {len(models)} models: {_counts(models)}\n\n| Model | Decision |\n|---|---|\n"
    rows: list[str] = []
    used = size(head) + 200
    for model in models:
        row = f"| {text(model['analysis']['model'], 100)} | {_action_icon(model)} {text(headline(model), 200)} |\n"
        if used + size(row) > budget:
            break
        rows.append(row)
        used += size(row)
    more = len(models) - len(rows)
    tail = f"\n_And {more} more models: see the HTML report._\n" if more else ""
    return head + "".join(rows) + tail + "\n"


def _unshown(count: int) -> str:
    if not count:
        return ""
    return f"\n_The details of {count} more models are not shown here: see the HTML report._\n"


def _action_icon(model: dict[str, Any]) -> str:
    return ACTION_ICONS.get(model["decision"]["action"], "")


def _section(model: dict[str, Any], budget: int) -> str | None:
    """The model's decision, reasons and facts, then as many of its latest intervals as fit."""
    head = _head(model)
    if size(head) > budget:
        return None
    return head + _interval_table(model["analysis"], budget - size(head)) + "\n"


def _head(model: dict[str, Any]) -> str:
    analysis, decision = model["analysis"], model["decision"]
    title = f"## {_action_icon(model)} {text(analysis['model'], 100)}: {text(headline(model), 300)}\n\n"
    reasons = [f"- {text(capitalised(reason), MAX_REASON)}\n" for reason in decision["reasons"][:MAX_REASONS]]
    if len(decision["reasons"]) > MAX_REASONS:
        reasons.append(f"- and {len(decision['reasons']) - MAX_REASONS} more\n")
    cells = facts(model)
    table = ("| " + " | ".join(name for name, _ in cells) + " |\n|" + "---|" * len(cells) + "\n| "
             + " | ".join(text(value, 100) for _, value in cells) + " |\n")
    return title + "".join(reasons) + "\n" + table + _records(model)


def _records(model: dict[str, Any]) -> str:
    """Where the decision was recorded, the incident issue, and the reconciler's notes."""
    said = [f"{name}: {text(model.get(key), 300)}" for key, name in (("recorded", "Recorded"), ("issue", "Incident"))
            if model.get(key)]
    lines = [" · ".join(said) + "\n"] if said else []
    lines += [f"- _Note: {text(note, MAX_REASON)}_\n" for note in model.get("notes") or []]
    return "\n" + "".join(lines) if lines else ""


def _interval_table(analysis: dict[str, Any], budget: int) -> str:
    """The latest intervals that fit, oldest first; a note counts the earlier ones left out."""
    intervals = analysis["intervals"]
    if not intervals:
        return "\nNo interval yet: the step has just begun.\n"
    names = metric_names(intervals)
    header = _table_header(intervals, names)
    room = budget - size(header) - NOTE_ROOM
    rows: list[str] = []
    for interval in reversed(intervals):
        row = _interval_row(interval, names)
        if size(row) > room:
            break
        rows.append(row)
        room -= size(row)
    left_out = intervals[: len(intervals) - len(rows)]
    table = header + "".join(reversed(rows)) if rows else ""
    return "\n" + table + _left_out(left_out)


def _table_header(intervals: list[dict[str, Any]], names: list[str]) -> str:
    columns = ["#", "Time (UTC)", "Result", "Answers (challenger / champion)"]
    for name in names:
        bound = metric_bound(intervals, name)
        columns.append(f"{text(measure(name, bound).title, 60)} ({text(bound_text(name, bound), 60)})")
    alignment = "|--:|---|---|--:|" + "---|" * len(names)
    return "| " + " | ".join(columns) + " |\n" + alignment + "\n"


def _interval_row(interval: dict[str, Any], names: list[str]) -> str:
    by_name = {m["name"]: m for m in interval["metrics"]}
    cells = [str(interval["index"]), _span(interval), f"{STATUS_ICONS[interval['status']]} {interval['status']}",
             f"{interval['samples']:,} / {interval['champion_answers']:,}"]
    for name in names:
        result = by_name.get(name)
        cells.append("" if result is None else f"{STATUS_ICONS[result['status']]} {text(value_text(result), 40)}")
    return "| " + " | ".join(cells) + " |\n"


def _left_out(intervals: list[dict[str, Any]]) -> str:
    if not intervals:
        return ""
    failed = sum(i["status"] == "fail" for i in intervals)
    first, last = intervals[0]["index"], intervals[-1]["index"]
    return f"\n_Intervals {first} to {last} are not shown ({len(intervals)}, {failed} failed): see the HTML report._\n"


# --- HTML ----------------------------------------------------------------------------------------

ROLLOUT_STYLE = """
.banner.warn{background:#9a6700}
.badge.hold,.badge.idle,.badge.skipped,.badge.running{background:#6e7781}
.badge.inconclusive{background:#9a6700}
figure svg{display:block;max-width:100%;height:auto;border:1px solid #d0d7de}
span.st.pass{color:#1a7f37}span.st.fail{color:#cf222e;font-weight:bold}span.st.inconclusive{color:#9a6700}
span.st.skipped,span.st.running{color:#6e7781}
"""
BADGES = {"advance": "pass", "promote": "pass", "abort": "fail", "pause": "warn", "hold": "hold", "idle": "idle"}
TONES = {"abort": "fail", "pause": "warn"}  # the banner's colour: the most urgent action's


def html(stage: str, models: list[dict[str, Any]], *, generated: str | None = None) -> str:
    """reports/rollout/<stage>.html: the stage's roll-outs as one page that needs nothing else."""
    ordered = sorted(models, key=_urgency)
    parts = [_banner(stage, ordered), "<main>", _overview_html(ordered) if len(ordered) > 1 else "",
             *(_model_html(index, model) for index, model in enumerate(ordered, start=1)),
             footer("reports/rollout/&lt;stage&gt;.json (the analyses and decisions)", generated), "</main>"]
    title = escape(clip(f"Roll-out in {stage}", 200))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{title}</title>\n<style>{STYLE}{ROLLOUT_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(part for part in parts if part) + "\n</body>\n</html>\n")


def _badge(label: str, tone: str) -> str:
    return f'<span class="badge {escape(tone)}">{escape(label.upper())}</span>'


def _banner(stage: str, models: list[dict[str, Any]]) -> str:
    first = models[0]["decision"]["action"] if models else "idle"
    tone = TONES.get(first, "pass")
    if not models:
        said = "no model of the stage has a challenger: nothing is rolling out"
    elif len(models) == 1:
        said = f"{models[0]['analysis']['model']}: {headline(models[0])}"
    else:
        said = f"{len(models)} models: {_counts(models)}"
    return (f'<header class="banner {tone}">\n<h1>Roll-out in {escape(clip(stage, 100))}</h1>\n'
            f'<p class="headline">{escape(clip(said, 800))}</p>\n</header>')


def _overview_html(models: list[dict[str, Any]]) -> str:
    rows = "".join(f'<tr><td><a href="#model-{index}">{escape(clip(m["analysis"]["model"], 200))}</a></td>'
                   f"<td>{_action_badge(m)} {escape(clip(headline(m), 300))}</td></tr>\n"
                   for index, m in enumerate(models, start=1))
    return f"<h2>Models</h2>\n<table>\n<tr><th>Model</th><th>Decision</th></tr>\n{rows}</table>"


def _action_badge(model: dict[str, Any]) -> str:
    action = model["decision"]["action"]
    return _badge(action, BADGES.get(action, "idle"))


def _model_html(index: int, model: dict[str, Any]) -> str:
    analysis, decision = model["analysis"], model["decision"]
    reasons = "".join(f"<li>{escape(capitalised(clip(reason, 2000)))}</li>\n" for reason in decision["reasons"])
    cells = facts(model)
    names = "".join(f"<th>{escape(name)}</th>" for name, _ in cells)
    values = "".join(f"<td>{escape(clip(value, 200))}</td>" for _, value in cells)
    table = f'<table style="width:auto">\n<tr>{names}</tr>\n<tr>{values}</tr>\n</table>'
    parts = [f'<section id="model-{index}">',
             f"<h2>{_action_badge(model)} {escape(clip(analysis['model'], 200))}: {escape(clip(headline(model), 300))}"
             "</h2>", f'<ul class="findings">\n{reasons}</ul>', table, _records_html(model),
             _figures(analysis), _intervals_html(analysis), "</section>"]
    return "\n".join(part for part in parts if part)


def _records_html(model: dict[str, Any]) -> str:
    """Where the decision was recorded, the incident issue, and the reconciler's notes."""
    said = [f"{name}: {escape(clip(str(model[key]), 300))}" for key, name in (("recorded", "Recorded"),
                                                                             ("issue", "Incident")) if model.get(key)]
    lines = [" · ".join(said)] if said else []
    lines += [f"Note: {escape(clip(note, 1000))}" for note in model.get("notes") or []]
    return "".join(f'<p class="stats">{line}</p>\n' for line in lines)


def _figures(analysis: dict[str, Any]) -> str:
    intervals = analysis["intervals"]
    if not intervals:
        return '<p class="stats">No interval yet: the step has just begun.</p>'
    figures = [_figure(traffic_chart(analysis), _traffic_caption(analysis))]
    unchartable = []
    for name in metric_names(intervals):
        chart = metric_chart(intervals, name)
        bound = metric_bound(intervals, name)
        if chart is None:
            unchartable.append(f"{name}: {results(intervals, name)[-1][1]['reason']}")
            continue
        caption = (f"{measure(name, bound).title} per interval; dashed: the bound ({bound_text(name, bound)}); "
                   "red: failed, amber: inconclusive, hollow: still running")
        figures.append(_figure(chart, caption))
    shown = '<div class="figures">\n' + "\n".join(figures) + "\n</div>"
    notes = "".join(f'<p class="stats">Not charted, {escape(clip(n, 600))}</p>\n' for n in unchartable)
    return shown + ("\n" + notes if notes else "")


def _traffic_caption(analysis: dict[str, Any]) -> str:
    return (f"Traffic: the challenger's answers per interval of {duration(float(analysis['interval']))} (bars, "
            f"coloured by the interval's result) and the champion's (orange); dashed: min_samples "
            f"{analysis['min_samples']:,}")


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(clip(caption, 400))}</figcaption></figure>"


def _intervals_html(analysis: dict[str, Any]) -> str:
    intervals = analysis["intervals"]
    if not intervals:
        return ""
    names = metric_names(intervals)
    heads = "".join(_metric_head(name, metric_bound(intervals, name)) for name in names)
    shown = intervals[-MAX_ROWS:]
    rows = "".join(_interval_html(interval, names) for interval in shown)
    left = len(intervals) - len(shown)
    note = f"<p>{left:,} earlier intervals are in reports/rollout/&lt;stage&gt;.json.</p>" if left else ""
    return (f"<details open><summary>{len(intervals):,} interval{'s' if len(intervals) != 1 else ''}</summary>\n"
            "<table>\n<tr><th>#</th><th>Time (UTC)</th><th>Result</th><th>Answers (challenger / champion)</th>"
            f"{heads}<th>Why</th></tr>\n{rows}</table>{note}\n</details>")


def _metric_head(name: str, bound: dict[str, Any]) -> str:
    return f"<th>{escape(measure(name, bound).title)}<br>({escape(bound_text(name, bound))})</th>"


def _interval_html(interval: dict[str, Any], names: list[str]) -> str:
    by_name = {m["name"]: m for m in interval["metrics"]}
    cells = [f'<td class="num">{interval["index"]}</td>', f"<td>{_span(interval)}</td>",
             f"<td>{_badge(interval['status'], interval['status'])}</td>",
             f'<td class="num">{interval["samples"]:,} / {interval["champion_answers"]:,}</td>']
    for name in names:
        result = by_name.get(name)
        cells.append(_metric_cell(result) if result else "<td></td>")
    cells.append(f"<td>{escape(clip(interval['reason'], 1000))}</td>")
    return "<tr>" + "".join(cells) + "</tr>\n"


def _metric_cell(result: dict[str, Any]) -> str:
    status = escape(result["status"])
    why = escape(clip(result["reason"], 1000))
    return f'<td class="num"><span class="st {status}" title="{why}">{escape(value_text(result))}</span></td>'


def footer(data: str, generated: str | None) -> str:
    """The page's footer: where its data is (`data`, already HTML), and when it was generated."""
    parts = [f"Data: {data}"]
    if generated:
        parts.append(f"generated {escape(clip(generated, 100))}")
    return "<footer>" + " · ".join(parts) + "</footer>"


# --- charts: inline SVG --------------------------------------------------------------------------

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 14, 12, 30
MAX_MARKED = 120  # with more intervals, only the points that did not pass are marked
STATUS_COLOURS = {**SPARK_COLOURS, "inconclusive": SPARK_COLOURS["warn"], "skipped": LEFT_OUT, "running": LEFT_OUT}


@dataclass(frozen=True)
class Plot:
    """A chart's drawing area: `count` interval slots across, `scale` up (values as drawn)."""

    count: int
    scale: Scale

    def x(self, index: int) -> float:
        """The middle of interval `index`'s slot (from 1)."""
        return LEFT + (index - 0.5) / self.count * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return TOP + (1 - self.scale.at(value)) * (HEIGHT - TOP - BOTTOM)

    @property
    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.count


def metric_chart(intervals: list[dict[str, Any]], name: str) -> str | None:
    """The metric over the intervals: a line through its values, its bound dashed, each point
    coloured by its result (failed ones always marked); None when it has no value to draw."""
    found = [(interval, result) for interval, result in results(intervals, name) if _number(result.get("value"))]
    if not found:
        return None
    bound = metric_bound(intervals, name)
    reading, line = measure(name, bound), limit(name, bound)
    drawn = _log10 if reading.log else float
    values = [drawn(float(result["value"])) for _, result in found]
    for _, result in found:
        values += [drawn(v) for v in _ci(result)]  # a whisker stays inside the chart
    bounds = [] if line is None else [drawn(line)]
    ceiling = None if reading.most is None else drawn(reading.most)
    plot = Plot(len(intervals), _capped(_floored(_scale(sorted(values), bounds), reading.least), ceiling))
    parts = [_axes(plot, intervals, lambda v: reading.shown(10 ** v if reading.log else v))]
    if line is not None:
        parts.append(_bound_line(plot, drawn(line), bound_text(name, bound)))
    parts += [_whisker(plot, interval, result, drawn) for interval, result in found if _ci(result)]
    parts.append(_line(plot, [(i["index"], drawn(float(r["value"]))) for i, r in found], REFERENCE))
    marked = len(intervals) <= MAX_MARKED
    parts += [_marker(plot, i, r, drawn(float(r["value"])), reading) for i, r in found
              if marked or r["status"] != "pass"]
    return _svg(f"{reading.title} per interval, {bound_text(name, bound)}", parts)


def traffic_chart(analysis: dict[str, Any]) -> str:
    """The challenger's answers per interval as bars coloured by the interval's result, the
    champion's as a line, and min_samples dashed."""
    intervals = analysis["intervals"]
    minimum = int(analysis["min_samples"])
    highest = max([minimum, *(i["samples"] for i in intervals), *(i["champion_answers"] for i in intervals)])
    plot = Plot(len(intervals), Scale(0.0, highest * 1.1 or 1.0))
    parts = [_axes(plot, intervals, lambda v: f"{v:,.0f}")]
    parts += [_bar(plot, interval) for interval in intervals]
    parts.append(_line(plot, [(i["index"], float(i["champion_answers"])) for i in intervals], CURRENT))
    parts.append(_bound_line(plot, float(minimum), f"min_samples {minimum:,}"))
    return _svg("Answers per interval: the challenger's (bars) and the champion's (line)", parts)


def _floored(scale: Scale, least: float | None) -> Scale:
    """The scale, not below what the metric can be (the margin around a bound may reach there)."""
    if least is None or scale.low >= least:
        return scale
    return Scale(least, scale.high)


def _capped(scale: Scale, most: float | None) -> Scale:
    """The scale, not above what the metric can be (a p-value's 1)."""
    if most is None or scale.high <= most:
        return scale
    return Scale(scale.low, most)


def _log10(value: float) -> float:
    return math.log10(max(value, 1e-12))


def _ci(result: dict[str, Any]) -> list[float]:
    """The value's confidence interval, where the metric gives one (the performance drop)."""
    ci = (result.get("details") or {}).get("ci")
    if isinstance(ci, list) and len(ci) == 2 and all(_number(v) for v in ci):
        return [float(ci[0]), float(ci[1])]
    return []


def _svg(label: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="DejaVu Sans,Arial,sans-serif" '
            f'font-size="11"><title>{escape(clip(label, 300))}</title>{"".join(parts)}</svg>')


def _axes(plot: Plot, intervals: list[dict[str, Any]], shown: Callable[[float], str]) -> str:
    """Three gridlines with their values, and the step's first and last times under the x axis."""
    scale, bottom = plot.scale, HEIGHT - BOTTOM
    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{bottom - TOP}" fill="#fff" '
             'stroke="#d0d7de"/>']
    for share in (0.0, 0.5, 1.0):
        value = scale.low + share * (scale.high - scale.low)
        y = f"{plot.y(value):.1f}"
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y}" text-anchor="end" dominant-baseline="middle" fill="#57606a">'
                     f"{escape(shown(value))}</text>")
    first, last = intervals[0], intervals[-1]
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 10}" fill="#57606a">{clock(float(first["start"]))}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" text-anchor="end" fill="#57606a">'
                 f'{clock(float(last["end"]))} UTC ({len(intervals):,} intervals)</text>')
    return "".join(parts)


def _bound_line(plot: Plot, value: float, label: str) -> str:
    y = f"{plot.y(value):.1f}"
    return (f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="{FAIL}" stroke-width="1.5" '
            f'stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT - 4}" y="{float(y) - 4:.1f}" text-anchor="end" '
            f'fill="{FAIL}">{escape(clip(label, 60))}</text>')


def _line(plot: Plot, points: list[tuple[int, float]], colour: str) -> str:
    """A polyline through the points, broken where an interval has no value."""
    segments: list[list[str]] = []
    previous = None
    for index, value in points:
        if previous is None or index != previous + 1:
            segments.append([])
        segments[-1].append(f"{plot.x(index):.1f},{plot.y(value):.1f}")
        previous = index
    return "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                   for s in segments if len(s) > 1)


def _marker(plot: Plot, interval: dict[str, Any], result: dict[str, Any], drawn: float, reading: Measure) -> str:
    status = result["status"]
    radius = 4.5 if status == "fail" else 3
    fill = "#fff" if not interval["complete"] else STATUS_COLOURS.get(status, LEFT_OUT)
    said = escape(f"{interval['label']}: {reading.shown(float(result['value']))}, {status}")
    return (f'<circle cx="{plot.x(interval["index"]):.1f}" cy="{plot.y(drawn):.1f}" r="{radius}" fill="{fill}" '
            f'stroke="{STATUS_COLOURS.get(status, LEFT_OUT)}" stroke-width="1.5"><title>{said}</title></circle>')


def _whisker(plot: Plot, interval: dict[str, Any], result: dict[str, Any], drawn: Callable[[float], float]) -> str:
    low, high = (drawn(v) for v in _ci(result))
    x = f"{plot.x(interval['index']):.1f}"
    return (f'<line x1="{x}" y1="{plot.y(low):.1f}" x2="{x}" y2="{plot.y(high):.1f}" stroke="{LEFT_OUT}" '
            'stroke-width="2"/>')


def _bar(plot: Plot, interval: dict[str, Any]) -> str:
    width = max(plot.slot * 0.7, 1.0)
    top = plot.y(float(interval["samples"]))
    colour = STATUS_COLOURS.get(interval["status"], LEFT_OUT)
    said = escape(f"{interval['label']}: {interval['samples']:,} challenger answers, {interval['status']}")
    return (f'<rect x="{plot.x(interval["index"]) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - BOTTOM - top:.1f}" fill="{colour}" fill-opacity=".6"><title>{said}</title></rect>')
