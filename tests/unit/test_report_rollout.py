"""The roll-out report: markdown (PR body, incident issue, job summary) and the HTML page, built from
real outcomes (a synthetic prediction log analysed by rollout.analysis and decided by
rollout.decision, tests/helpers/rollout_log.py): every action's headline, the structure of both
formats, hostile names and reasons escaped, the PR comment limit at 500 intervals and at many
models, and charts whose failing points sit on the failing side of their bound."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from modelops_ci.report import rollout as report
from modelops_ci.report.markdown import PR_COMMENT_LIMIT, size
from modelops_ci.report.plots import FAIL
from tests.helpers.reports import parsed, to_html
from tests.helpers.rollout_log import every_action, log, model, outcome

HOSTILE = "m-<script>alert(1)</script>|@team *x* [a](http://e.test)"
HOSTILE_VERSION = "v2<img src=x onerror=alert(1)>|`@team`"
BENIGN = "m-plain-name"


@pytest.fixture(scope="module")
def actions() -> dict[str, dict[str, Any]]:
    return every_action()


@pytest.fixture(scope="module")
def long_step() -> dict[str, Any]:
    """500 completed intervals of a minute (and one running): about one in six has a 5xx and fails."""
    deployed = model("busy", interval=60.0, min_samples=5, failure_limit=1_000)
    return outcome(log("busy", 6, 501, errors=0.03, interval=60.0), deployed, 500)


# --- words -------------------------------------------------------------------------------------


def test_every_action_has_its_headline_first(actions: dict[str, dict[str, Any]]) -> None:
    said = {action: report.headline(model) for action, model in actions.items()}
    assert {action: m["decision"]["action"] for action, m in actions.items()} == {a: a for a in actions}
    assert said["advance"] == "advance 10% -> 50%"
    assert said["abort"] == "abort: 10% -> 0% after 2 failed intervals in a row"
    assert said["hold"] == "hold at 10%: 4 min 50 s until 08:10:00 UTC"  # the pause of 10 min from 08:00
    assert said["pause"] == "pause at 10%: for a person to look"
    assert said["promote"] == "promote v1.1.0: hand it over to the signed promotion"
    assert said["idle"] == "idle: the challenger is at 0%"
    for action, outcome_json in actions.items():
        first = report.markdown([outcome_json]).splitlines()[0]
        assert first == f"## {report.ACTION_ICONS[action]} credit-{action}: {said[action].replace('>', '&gt;')}"
        heading = re.search(r"<h2>(.*?)</h2>", report.html("production", [outcome_json]))
        assert heading is not None and said[action].replace(">", "&gt;") in heading.group(1)


def test_markdown_says_why_and_tables_every_interval(actions: dict[str, dict[str, Any]]) -> None:
    aborted = actions["abort"]
    text = report.markdown([aborted])
    for reason in aborted["decision"]["reasons"]:
        assert f"- {report.text(reason[:1].upper() + reason[1:], report.MAX_REASON)}\n" in text
    assert "Recorded: https://github.com/o/r/pull/7 · Incident: https://github.com/o/r/issues/8" in text
    rendered = to_html(text)
    facts, intervals = re.findall(r"<table>(.*?)</table>", rendered, re.S)
    assert re.findall(r"<td>(.*?)</td>", facts) == ["v1.0.0", "v1.1.0", "canary", "10% -&gt; 0%", "1",
                                                    "2027-01-15 08:00:00 UTC", "5 min", "100"]
    headers = re.findall(r"<th[^>]*>(.*?)</th>", intervals)
    assert headers[4:] == ["Error rate (≤ 2.0%)", "p99 latency (≤ 50 ms)", "Agreement with the champion (≥ 90.0%)",
                           "Prediction drift (fails at p ≤ 0.01)"]
    rows = re.findall(r"<tr>(.*?)</tr>", intervals, re.S)[1:]
    assert len(rows) == len(aborted["analysis"]["intervals"]) == 3
    first = aborted["analysis"]["intervals"][0]["metrics"][0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert cells[:3] == ["1", "08:00:00-08:05:00", "❌ fail"]
    assert cells[4] == f"❌ {first['value']:.1%}" and cells[6] == "⚪ skipped"
    assert re.findall(r"<td[^>]*>(.*?)</td>", rows[2])[2] == "⏳ running"


def test_markdown_lists_the_most_urgent_first_with_one_row_each(actions: dict[str, dict[str, Any]]) -> None:
    text = report.markdown(list(actions.values()))
    assert text.startswith("## Roll-out of 6 models: 1 abort, 1 pause, 1 advance, 1 promote, 1 hold, 1 idle\n")
    order = re.findall(r"^## \S+ credit-(\w+):", text, re.M)
    assert order == list(report.URGENCY)
    assert markdown_tables_are_whole(text) == 1 + 2 * len(actions)  # the overview, facts and intervals each


def markdown_tables_are_whole(text: str) -> int:
    """Every table's rows have as many cells as its header; returns how many tables."""
    tables = re.findall(r"<table>(.*?)</table>", to_html(text), re.S)
    for table in tables:
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)}
        assert len(widths) == 1, widths
    return len(tables)


# --- escaping ----------------------------------------------------------------------------------


def _named(name: str, version: str, note: str) -> dict[str, Any]:
    deployed = model(name, challenger=version)
    return outcome(log(name, 150, 3, errors=0.2, challenger=version), deployed, 2, notes=[note],
                   recorded=f"https://github.com/o/r/pull/1?{note}")


def test_hostile_names_and_reasons_add_no_markup_in_markdown() -> None:
    hostile = _named(HOSTILE, HOSTILE_VERSION, HOSTILE)
    benign = _named(BENIGN, "v2", BENIGN)
    assert any(HOSTILE_VERSION in reason for reason in hostile["decision"]["reasons"])  # the reasons carry it
    text, plain = report.markdown([hostile, benign]), report.markdown([benign, benign])
    rendered = to_html(text)
    assert tags(rendered) == tags(to_html(plain))  # no tag, link, emphasis or table cell from data
    assert "<script>" not in rendered and "<img" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "@team" not in text.replace("@\u2060team", "")  # nobody is pinged


def tags(rendered: str) -> list[str]:
    return parsed(rendered).tags


def test_hostile_names_and_reasons_add_no_markup_in_html() -> None:
    hostile = _named(HOSTILE, HOSTILE_VERSION, HOSTILE)
    page = report.html(HOSTILE, [hostile])
    plain = report.html(BENIGN, [_named(BENIGN, "v2", BENIGN)])
    assert parsed(page).tags == parsed(plain).tags
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE in "".join(parsed(page).text)  # shown as text, whole


# --- the limit ---------------------------------------------------------------------------------


def test_markdown_stays_under_the_comment_limit_at_500_intervals(long_step: dict[str, Any]) -> None:
    intervals = long_step["analysis"]["intervals"]
    assert len(intervals) == 501 and sum(i["status"] == "fail" for i in intervals) > 20
    for limit in (PR_COMMENT_LIMIT, 20_000, 3_000):
        text = report.markdown([long_step], limit=limit)
        assert size(text) <= limit
        assert markdown_tables_are_whole(text) == 2
        shown = [int(n) for n in re.findall(r"^\| (\d+) \| \d\d:\d\d:\d\d-", text, re.M)]
        assert shown == list(range(shown[0], 502))  # the latest, in order, up to the one running
        left_out = intervals[: shown[0] - 1]
        failed = sum(i["status"] == "fail" for i in left_out)
        note = f"_Intervals 1 to {shown[0] - 1} are not shown ({len(left_out)}, {failed} failed)"
        assert (note in text) == bool(left_out)
        assert text.rstrip().endswith("</sub>")
        if limit < PR_COMMENT_LIMIT:
            assert left_out and failed


def test_markdown_stays_under_the_limit_with_many_models(long_step: dict[str, Any],
                                                         actions: dict[str, dict[str, Any]]) -> None:
    many = [_renamed(actions["hold"], f"quiet-{i:04d}") for i in range(1_000)] + [long_step, actions["abort"]]
    for limit in (PR_COMMENT_LIMIT, 8_000):
        text = report.markdown(many, limit=limit)
        assert size(text) <= limit
        assert markdown_tables_are_whole(text) >= 1
        assert re.search(r"^## ❌ credit-abort: abort", text, re.M)  # the abort's details come first
        assert re.search(r"^## ⏩ busy: advance", text, re.M)  # then the advance, before the holds
        assert re.search(r"_The details of \d+ more models are not shown here", text)
    full = report.markdown(many)
    marker = "<!-- modelops-ci:rollout incident credit-abort production -->\n"  # the command's, above an issue's body
    assert size(full) > PR_COMMENT_LIMIT - 2_000  # it fills the comment
    assert size(marker + full) <= PR_COMMENT_LIMIT
    overview = full.split("\n\n## ", 1)[0]
    assert re.search(r"_And \d+ more models: see the HTML report", overview)


def _renamed(outcome_json: dict[str, Any], name: str) -> dict[str, Any]:
    """A real outcome as another model's (building 300 logs would only repeat the same analysis)."""
    renamed = copy.deepcopy(outcome_json)
    renamed["analysis"]["model"] = renamed["decision"]["model"] = name
    return renamed


def test_no_model_is_a_short_note() -> None:
    assert "nothing is rolling out" in report.markdown([])
    assert "nothing is rolling out" in "".join(parsed(report.html("production", [])).text)


# --- the HTML page -------------------------------------------------------------------------------


def test_the_page_is_self_contained_with_a_chart_per_metric(actions: dict[str, dict[str, Any]]) -> None:
    page = report.html("production", list(actions.values()))
    found = parsed(page)
    assert "script" not in found.tags
    assert all(url.startswith("#model-") for url in found.urls)  # the overview's links, nothing else
    assert "Content-Security-Policy" in page
    sections = re.findall(r'<section id="model-\d+">(.*?)</section>', page, re.S)
    assert len(sections) == len(actions)
    for section in sections:
        svgs = re.findall(r"<svg .*?</svg>", section, re.S)
        assert len(svgs) == 4  # the traffic, and the 3 metrics with values (agreement is skipped in a canary)
        assert "Not charted, agreement: not measurable in a canary" in section
    assert '<header class="banner fail">' in page  # an abort


def _chart(section: str, title: str) -> str:
    return next(svg for svg in re.findall(r"<svg .*?</svg>", section, re.S) if f"<title>{title}" in svg)


def test_failing_points_are_marked_beyond_the_bound(long_step: dict[str, Any]) -> None:
    intervals = long_step["analysis"]["intervals"]
    svg = _chart(report.html("production", [long_step]), "Error rate per interval")
    bound = re.search(r'<line x1="\d+" y1="([\d.]+)" x2="\d+" y2="[\d.]+" stroke="#cf222e"[^>]*stroke-dasharray',
                      svg)
    assert bound is not None
    marks = re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)" r="[\d.]+" fill="([^"]+)"', svg)
    failed = [i for i in intervals if i["metrics"][0]["status"] == "fail" and i["complete"]]
    red = [float(y) for y, fill in marks if fill == FAIL]
    assert len(red) == len(failed) > 20  # every failure marked; 500 passing points are left unmarked
    assert all(y < float(bound.group(1)) for y in red)  # above the max on the chart
    polyline = re.search(r'<polyline points="([^"]+)"', svg)
    assert polyline is not None and len(polyline.group(1).split()) == len(intervals)
    traffic = _chart(report.html("production", [long_step]), "Answers per interval")
    assert traffic.count("<rect ") == 1 + len(intervals)  # the frame and a bar each


def test_few_intervals_mark_every_point_by_its_result(actions: dict[str, dict[str, Any]]) -> None:
    section = report.html("production", [actions["pause"]])
    svg = _chart(section, "p99 latency per interval")
    fills = re.findall(r'<circle [^>]*fill="([^"]+)"', svg)
    statuses = [i["status"] for i in actions["pause"]["analysis"]["intervals"]]
    assert statuses == ["inconclusive"] * 3 + ["running"]
    assert fills == [report.STATUS_COLOURS["inconclusive"]] * 3 + ["#fff"]  # the running one hollow
