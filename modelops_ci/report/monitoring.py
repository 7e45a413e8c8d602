"""Monitoring for people: one stand-alone HTML page per stage (reports/monitoring/<stage>.html) with,
per model, its windows' traffic, each feature's drift over time (the corrected p-value against
alpha, and the size of the change), the performance estimated from the scores and realised from
labels with their intervals, and the alerts.

It reads what `modelops-ci monitor --traffic` writes (reports/monitoring/<stage>.json) and draws
with the roll-out page's inline SVG charts: a window is drawn as an interval, a measure as a
metric. Names and reasons come from the log and the specs: everything is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from modelops_ci.report.format import clip
from modelops_ci.report.html import CSP, STYLE
from modelops_ci.report.rollout import ROLLOUT_STYLE, footer, metric_chart, traffic_chart

STATUS = {"pass": "pass", "drift": "fail", "inconclusive": "inconclusive", "error": "inconclusive"}
MAX_FEATURES = 40  # charts per model: the rest are in the JSON


def html(report: dict[str, Any], *, generated: str | None = None) -> str:
    stage = str(report["stage"])
    models = report["models"]
    firing = [m for m in models if any(a["kind"] in ("open", "update") for a in m["alerts"])]
    tone = "fail" if firing else "pass"
    said = (f"{len(firing)} of {len(models)} models have an alert open: "
            + ", ".join(m["model"] for m in firing) if firing else f"{len(models)} models watched, no alert open")
    parts = [f'<header class="banner {tone}">\n<h1>Monitoring: {escape(clip(stage, 100))}</h1>\n'
             f'<p class="headline">{escape(clip(said, 800))}</p>\n</header>', "<main>",
             *(_model(index, model) for index, model in enumerate(models, start=1)), _problems(report["problems"]),
             footer("reports/monitoring/&lt;stage&gt;.json (every window's checks and the alerts)", generated),
             "</main>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(clip(f'Monitoring: {stage}', 200))}</title>\n<style>{STYLE}{ROLLOUT_STYLE}</style>\n"
            "</head>\n<body>\n" + "\n".join(p for p in parts if p) + "\n</body>\n</html>\n")


def intervals(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's windows as the roll-out charts' intervals, each measure as a metric."""
    drawn = []
    for index, window in enumerate(model["windows"], start=1):
        label = f"window {index} ({_clock(window['start'])} UTC, {window['version']})"
        drawn.append({"index": index, "label": label, "start": window["start"], "end": window["end"], "complete": True,
                      "status": STATUS.get(window["status"], "inconclusive"), "reason": window["reason"],
                      "samples": window["rows"], "champion_answers": 0, "metrics": _measures(window, model)})
    return drawn


def _measures(window: dict[str, Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for check in window["checks"]:
        details = check.get("details") or {}
        if "p_adjusted" in details:
            drifted = bool(details.get("drifted"))
            alpha = (check.get("threshold") or {}).get("alpha", 0.05)
            found.append({"name": f"{check['name']}: corrected p-value", "status": "fail" if drifted else "pass",
                          "value": details["p_adjusted"], "bound": {"alpha": alpha}, "reason": check["reason"]})
            effect = details.get("wasserstein_sd", details.get("js"))
            if effect is not None:
                what = "Wasserstein distance (SDs)" if "wasserstein_sd" in details else "Jensen-Shannon distance"
                found.append({"name": f"{check['name']}: {what}", "status": "fail" if drifted else "pass",
                              "value": effect, "bound": {}, "reason": check["reason"]})
    least = model.get("min_performance") or {}
    for estimate in window.get("performance") or []:
        how = "realised" if estimate["realised"] else "estimated"
        bound = {"min": least[estimate["metric"]]} if estimate["metric"] in least else {}
        low, high = estimate["ci"]
        status = "fail" if bound and high < bound["min"] else "pass"
        found.append({"name": f"{estimate['metric']} ({how})", "status": status, "value": estimate["value"],
                      "bound": bound, "details": {"ci": [low, high]},
                      "reason": f"{estimate['metric']} {how} {estimate['value']:.3f} ({low:.3f} to {high:.3f})"})
    return found


def _model(index: int, model: dict[str, Any]) -> str:
    drawn = intervals(model)
    name = escape(clip(model["model"], 200))
    head = f'<section id="model-{index}">\n<h2>{name}: windows of {escape(str(model["window"]))}</h2>'
    if not drawn:
        empty = '<p class="stats">No window: the log has no traffic of this model in the lookback.</p>'
        return f"{head}\n{empty}\n</section>"
    figures = [_figure(traffic_chart({"intervals": drawn, "min_samples": model.get("min_samples", 0)}),
                       "Rows per window, coloured by the window's verdict (red: drift, amber: not judged); dashed: "
                       "min_samples")]
    names = []
    for interval in drawn:
        names += [m["name"] for m in interval["metrics"] if m["name"] not in names]
    for metric in names[: 2 * MAX_FEATURES]:
        chart = metric_chart(drawn, metric)
        if chart is not None:
            figures.append(_figure(chart, f"{metric} per window"))
    alerts = "".join(f"<li>{escape(a['cause'])}: {escape(a['kind'])}, first seen {_clock(a['first_seen'])} UTC"
                     + (f' (<a href="{escape(a["url"])}">{escape(clip(a["url"], 200))}</a>)' if a.get("url") else "")
                     + f": {escape(clip(a['reason'], 1000))}</li>\n" for a in model["alerts"])
    alert_list = f'<ul class="findings">\n{alerts}</ul>' if alerts else '<p class="stats">No alert.</p>'
    return "\n".join([head, "<h3>Alerts</h3>", alert_list, '<div class="figures">', *figures, "</div>",
                      "</section>"])


def _clock(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(clip(caption, 400))}</figcaption></figure>"


def _problems(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{escape(clip(p, 1000))}</li>\n" for p in problems)
    return f"<section>\n<h2>Not assessed</h2>\n<ul>\n{items}</ul>\n</section>"
