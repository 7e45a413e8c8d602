"""Reports for people: gates.json as markdown (PR comment, job summary) and self-contained HTML,
built from real gate results (the performance gate on synthetic predictions, `gates_report` for
the verdict) plus the fairness/drift details the report draws; the HTML is opened in Chromium.
The last tests render what the gate stages of a real pipeline wrote."""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.errors import UserError
from modelops_ci.gates.result import Check, error
from modelops_ci.gates.verdict import load, schema, validate
from modelops_ci.report import html, markdown, plots
from modelops_ci.report.load import Inputs
from modelops_ci.report.pages import render_reports
from modelops_ci.report.words import headline
from modelops_ci.steps.gate import REPORT_VERSION, gates_report
from tests.helpers import reports
from tests.helpers.reports import (
    Page,
    drift_gate,
    make_repo,
    performance_gate,
    plots_data,
    to_html,
    typed,
    write_json,
)


@functools.cache
def _credit_report(groups: tuple[str, ...] | None, worst: str, best: str) -> dict[str, Any]:
    return reports.credit_report(groups=None if groups is None else list(groups), worst=worst, best=best)


def credit_report(groups: list[str] | None = None, worst: str = "single", best: str = "married") -> dict[str, Any]:
    """`reports.credit_report`, built once per distinct argument (it runs the performance gate's bootstrap;
    the report is deterministic): each call gets its own deep copy, as tests change it."""
    return copy.deepcopy(_credit_report(None if groups is None else tuple(groups), worst, best))


HOSTILE = ["<script>alert(1)</script>", "a|b", "@acme/model-risk", "`code`", "$\\frac{x", "**bold**",
           "```", '"quoted" & <b>', "[link](javascript:alert(1))", "%%{init: {'theme':'dark'}}%%"]


# --- schema ------------------------------------------------------------------------------------


def test_schema_is_valid_and_accepts_what_the_gates_write() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["version"]["const"] == REPORT_VERSION
    validate(credit_report(), "gates.json")
    missing = gates_report("p", [error("fairness", "no result: fairness.json is missing or unreadable").to_json()], {})
    validate(missing, "gates.json")
    validate(gates_report("p", [], {}), "gates.json")


@pytest.mark.parametrize(("change", "where"), [
    (lambda r: r.pop("verdict"), "'verdict' is a required property"),
    (lambda r: r["gates"][1].update(status="passed"), "$.gates[1].status"),
    (lambda r: r["gates"][1]["checks"][0].update(ci=[0.1]), "$.gates[1].checks[0].ci"),
    (lambda r: r.update(version=2), "$.version"),
])
def test_an_invalid_report_is_refused_with_where_and_what(tmp_path: Path, change: Any, where: str) -> None:
    report = credit_report()
    change(report)
    write_json(tmp_path / "gates.json", report)
    with pytest.raises(UserError, match=re.escape(where)) as caught:
        load(tmp_path / "gates.json")
    assert str(tmp_path / "gates.json") in str(caught.value)


def test_unreadable_or_missing_reports_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "gates.json").write_text('{"version": 1,\n  "verdict": }', encoding="utf-8")
    with pytest.raises(UserError, match=r"gates\.json:2:\d+: not JSON"):
        load(tmp_path / "gates.json")
    with pytest.raises(UserError, match="run the pipeline's gate stages first"):
        load(tmp_path / "missing.json")
    with pytest.raises(UserError, match=r"no reports/<pipeline>/gates\.json"):
        render_reports(tmp_path)


# --- plain words -------------------------------------------------------------------------------


def test_the_verdict_reads_in_plain_words() -> None:
    assert headline(typed(credit_report())) == ("Not ready for production: the model approves “single” (Marital) "
                                                "at 61% of the rate for “married” (policy: at least 80%)")
    passing = gates_report("p", [performance_gate()], {})
    assert headline(typed(passing)).startswith("Ready for production: its one required gate passed")
    broken = gates_report("p", [error("fairness", "no result: fairness.json is missing or unreadable").to_json()], {})
    assert headline(typed(broken)) == ("Not ready for production: the fairness check could not be run: no result: "
                                "fairness.json is missing or unreadable")


def test_a_check_failed_on_its_ci_says_how_bad_it_may_be() -> None:
    report = credit_report()
    check = report["gates"][2]["checks"][0]
    check.update(statistic=0.85, ci=[0.74, 0.95])
    assert "at 85% of the rate for “married”, possibly as low as 74% (policy: at least 80%)" in headline(typed(report))


# --- markdown ----------------------------------------------------------------------------------


def test_markdown_puts_the_verdict_first_and_collapses_the_statistics() -> None:
    text = markdown.render(typed(credit_report()))
    first, _, second = text.splitlines()[:3]
    assert first == "## ❌ credit-risk: Not ready for production"
    assert second.startswith("**Not ready for production: the model approves “single”")
    assert text.index("<details><summary>❌ Fairness") > text.index("| Gate | Result | In plain words |")
    assert "To review (does not block):" in text and "drift" in text.lower()
    rendered = to_html(text)
    assert rendered.count("<details>") == rendered.count("</details>") == 5  # charts + 4 gates
    assert "<table>" in rendered


def test_markdown_draws_mermaid_charts() -> None:
    text = markdown.render(typed(credit_report()))
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert blocks[0].startswith("flowchart LR") and ":::fail" in blocks[0]
    bars = [b for b in blocks if b.startswith("xychart-beta")]
    assert len(bars) == 2  # Marital and age_band
    assert 'x-axis ["married", "single", "separated", "widow", "divorced"]' in bars[0]
    assert "bar [0.4100, 0.2500, 0.3300, 0.2900, 0.2500]" in bars[0]
    assert "line [0.3280, 0.3280" in bars[0]  # the policy's floor: 0.8 x the best group's rate


def tags(rendered: str) -> list[str]:
    page = Page()
    page.feed(rendered)
    return page.tags


BENIGN = [f"group{i}" for i in range(len(HOSTILE))]


def test_hostile_names_are_escaped_in_markdown() -> None:
    text = markdown.render(typed(credit_report(groups=HOSTILE, worst=HOSTILE[0], best=HOSTILE[1])))
    rendered = to_html(text)
    benign = to_html(markdown.render(typed(credit_report(groups=BENIGN, worst=BENIGN[0], best=BENIGN[1]))))
    assert tags(rendered) == tags(benign)  # data never adds markup: no tag, link, emphasis, table cell
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # shown, not run
    assert "@\u2060acme/model-risk" in text  # no team is pinged
    for block in re.findall(r"```mermaid\n(.*?)```", text, re.S):
        for line in block.splitlines():
            assert "%%" not in line and "`" not in line and "<" not in line and "{" not in line.split('"', 1)[-1]
            assert line.count('"') % 2 == 0
    assert text.count("```") % 2 == 0  # every fence closed


def test_markdown_stays_under_the_limit_with_a_huge_number_of_checks() -> None:
    """20,000 checks: their rows would take 4.2 MB of markdown (four times the largest limit) and
    6.8 MB of HTML if the page listed them all (it lists html.MAX_ROWS)."""
    report = credit_report()
    report["gates"][3] = drift_gate(features=0, advisory=False)
    checks = [{"name": f"feature_{i:06d}|<x>", "status": "fail" if i % 1000 == 7 else "pass",
               "reason": "no evidence of change " * 5, "statistic": 0.01, "p_value": 0.5, "n": 1000}
              for i in range(20_000)]
    report["gates"][3]["checks"] = checks
    huge = typed(report)
    for limit in (markdown.DEFAULT_LIMIT, markdown.PR_COMMENT_LIMIT, 4_000):
        text = markdown.render(huge, limit=limit)
        assert markdown.size(text) <= limit
        assert text.startswith("## ❌ credit-risk: Not ready for production")
        assert text.rstrip().endswith("</sub>")
    text = markdown.render(huge)
    assert "feature\\_000007" in text  # failures come first
    assert re.search(r"_\d+ more checks not shown \(least severe first\)", text)
    rendered = to_html(text)
    assert rendered.count("<details>") == rendered.count("</details>")
    summary = markdown.summary([huge, huge], limit=markdown.PR_COMMENT_LIMIT)
    assert markdown.size(summary) <= markdown.PR_COMMENT_LIMIT
    assert len(html.render(huge).encode()) < 3_000_000  # the HTML lists the most severe checks only


# --- HTML --------------------------------------------------------------------------------------


def test_html_is_self_contained_with_plots() -> None:
    page_text = html.render(typed(credit_report()), Inputs({"roc_auc": 0.83}, plots_data()))
    page = Page()
    page.feed(page_text)
    assert "script" not in page.tags
    assert page.urls and all(url.startswith("data:image/png;base64,") for url in page.urls)
    assert "http" not in page_text.replace('http-equiv="Content-Security-Policy"', "")
    assert "url(" not in page_text and "@import" not in page_text
    images = [base64.b64decode(url.split(",", 1)[1]) for url in page.urls]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    assert len(images) == 1 + 2 + 3 + 2  # performance CIs, 2 fairness features, 3 drifted features, ROC, calibration


def test_hostile_names_are_escaped_in_html() -> None:
    page_text = html.render(typed(credit_report(groups=HOSTILE, worst=HOSTILE[0], best=HOSTILE[1])))
    assert tags(page_text) == tags(html.render(typed(credit_report(groups=BENIGN, worst=BENIGN[0], best=BENIGN[1]))))
    page = Page()
    page.feed(page_text)
    assert "<script>alert(1)</script>" in "".join(page.text)  # shown as text


def test_plots_are_deterministic_and_take_any_label() -> None:
    rows = [{"group": name, "value": 0.3, "ci": [0.2, 0.4], "n": 10} for name in HOSTILE]
    first = plots.group_rates("$x$", "selection_rate", rows, floor=0.25)
    assert first is not None and first == plots.group_rates("$x$", "selection_rate", rows, floor=0.25)
    assert plots.curve("roc", [{"fpr": 0.0}]) is None
    assert plots.drift_feature(Check("x", "pass", "", details={"histogram": {"edges": [0, 1]}})) is None
    # the drift gate may give its ECDF points instead of a histogram
    x = [0.0, 1.0, 2.0, 3.0]
    ecdf = {"x": x, "reference": [0.1, 0.5, 0.9, 1.0], "current": [0.0, 0.2, 0.6, 1.0]}
    assert plots.drift_feature(Check("x", "warn", "", details={"ecdf": ecdf})) is not None


# --- files -------------------------------------------------------------------------------------


def test_render_reports_writes_every_pipeline_and_a_summary(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    written = render_reports(root)
    assert [p.relative_to(root).as_posix() for p in written] == [
        "reports/arrivals-us/report.md", "reports/arrivals-us/report.html",
        "reports/credit-risk/report.md", "reports/credit-risk/report.html", "reports/summary.md"]
    summary = (root / "reports/summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# ❌ 1 of 2 pipelines not ready for production")
    assert summary.index("credit-risk: Not ready") < summary.index("arrivals-us: Ready")  # failing first
    before = {p: p.read_bytes() for p in written}
    assert {p: p.read_bytes() for p in render_reports(root)} == before  # no timestamps
    render_reports(root, ["credit-risk"], generated="2025-01-02T03:04:05Z")
    assert "generated 2025-01-02T03:04:05Z" in (root / "reports/credit-risk/report.md").read_text()
    with pytest.raises(UserError, match="no gates report"):
        render_reports(root, ["nope"])


def test_the_summary_of_300_pipelines_fits_a_pr_comment_and_names_every_one(tmp_path: Path) -> None:
    """Issue 11: 148 series made a 206 KB reports/summary.md. The summary stays under GitHub's comment
    limit, puts what is not ready first, names every pipeline and counts them at the end."""
    failing = {f"series-{i:03d}" for i in range(0, 300, 25)}
    failed = typed(credit_report())
    passed = credit_report()
    passed["gates"] = [g for g in passed["gates"] if g["gate"] == "performance"]
    passed["verdict"], passed["reason"] = "pass", "all required gates passed"
    ready = typed(passed)
    reports = [dataclasses.replace(failed if name in failing else ready, pipeline=name)
               for name in (f"series-{i:03d}" for i in range(300))]
    text = markdown.summary(reports)
    assert markdown.size(text) <= markdown.PR_COMMENT_LIMIT
    assert text.startswith("# ❌ 12 of 300 pipelines not ready for production")
    for report in reports:
        assert report.pipeline in text, report.pipeline
    table = [line for line in text.splitlines() if line.startswith("| series-")]
    assert [row.split(" | ")[0][2:] for row in table[:12]] == sorted(failing), "what is not ready comes first"
    assert "reports/&lt;pipeline&gt;/report.md" in text or "reports/<pipeline>/report.md" in text
    last = text.rstrip().splitlines()[-3:]
    assert "**12 of 300 pipelines not ready for production**: 12 failed a gate, 288 ready" in last, last

    wordy = dataclasses.replace(failed, reason="x" * 2_000)
    many = markdown.summary([dataclasses.replace(wordy, pipeline=f"series-{i:04d}") for i in range(2_000)])
    assert markdown.size(many) <= markdown.PR_COMMENT_LIMIT
    assert "And " in many and "more, each with its report in reports/&lt;pipeline&gt;/" in many
    assert "series-0000" in many and "others." in many.split("And ")[1], "names while they fit, then a count"
