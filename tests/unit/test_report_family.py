"""Reports of a batched family at 1,000 series: the verdict lines, summary.json, the page listing
every series worst first with a chart each, and the job summary and PR comment that stay under
GitHub's limits while always showing the failed series. The family's gates.json is assembled by the
batch stage's own `family_report` from hand-written series results (no DVC, no model)."""

from __future__ import annotations

import hashlib
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.errors import UserError
from modelops_ci.gates.result import Check
from modelops_ci.gates.verdict import GatesReport, gated_pipelines, lines, read_current, validate
from modelops_ci.github.comment import comment_body
from modelops_ci.github.metrics import Diffs
from modelops_ci.github.summary import SUMMARY_LIMIT, append_summary
from modelops_ci.report import html, markdown, plots
from modelops_ci.report.family import CLOSEST, headroom, ranked
from modelops_ci.report.load import Inputs
from modelops_ci.report.markdown import PR_COMMENT_LIMIT
from modelops_ci.report.pages import render_current
from modelops_ci.steps.batch import Family, family_report
from modelops_ci.steps.gate import summary
from modelops_ci.steps.series import SeriesRecord

FAMILY = "jobs"
SERIES = 1_000
HOSTILE = "s-<script>alert(1)</script>|@team"
FAILED = {"s0417": 1.62, "s0033": 1.55, "s0902": 1.9, "s0250": 1.51, HOSTILE: 1.7}  # the CI's upper end
ERRORS = ("s0777", "s0005")  # stopped before a model: the family's `error` series
CLOSE = {"s0600": 1.49, "s0061": 1.45, "s0998": 1.40}  # passing, closest to the 1.5 threshold


def _performance(upper: float, status: str) -> dict[str, Any]:
    """A series' performance gate in brief, as steps/series.py writes it into the family's report."""
    estimate = round(upper - 0.2, 4)
    said = "at most 1.5" if status == "pass" else "above 1.5"
    check = {"name": "mase", "status": status, "statistic": estimate, "ci": [round(upper - 0.4, 4), upper],
             "threshold": {"max": 1.5}}
    return {"gate": "performance", "status": status, "advisory": False, "checks": [check],
            "reason": f"MASE is {estimate:.3g} (90% CI {upper - 0.4:.3g} to {upper:.3g}): {said}"}


def _record(name: str, upper: float | None) -> SeriesRecord:
    if upper is None:
        gate = {"gate": "data", "status": "error", "reason": f"{name}: 3 rows: too few to split"}
        return SeriesRecord(name, "k", "fail", f"data: {gate['reason']}", gates=[gate])
    status = "fail" if upper > 1.5 else "pass"
    gate = _performance(upper, status)
    reason = f"performance: {gate['reason']}" if status == "fail" else "all 1 required gate(s) passed"
    return SeriesRecord(name, "k", status, reason, {"mase": upper - 0.2}, "0" * 64, 120, [gate])


def family_json(rules: list[dict[str, Any]] | None = None, failed: dict[str, float] | None = None,
                count: int = SERIES) -> dict[str, Any]:
    """The family's gates.json: `count` series (and the `failed` ones not among them), the FAILED
    and ERRORS ones failing, CLOSE near the threshold."""
    rng = random.Random(12)
    failed = FAILED if failed is None else failed
    uppers: dict[str, float | None] = {f"s{i:04d}": round(rng.uniform(0.4, 1.3), 4) for i in range(count - 1)}
    uppers.update({**CLOSE, **failed, **dict.fromkeys(ERRORS)})
    records = [_record(name, upper) for name, upper in uppers.items()]
    rng.shuffle(records)
    params = {"governance": {"policies": ["labour"], "family": rules or [{"max_failed": 0}]}}
    return family_report(Family(Path("."), FAMILY, params), records)


@pytest.fixture(scope="module")
def family() -> GatesReport:
    return GatesReport.from_json(family_json())


@pytest.fixture(scope="module")
def page(family: GatesReport) -> str:
    return html.render(family, Inputs({"series": SERIES, "failed": 7, "mase_median": 0.6}, {}))


# --- gates.json ------------------------------------------------------------------------------------


def test_the_schema_accepts_a_family_report_and_says_where_one_is_wrong(tmp_path: Path) -> None:
    report = family_json()
    validate(report, "gates.json")
    validate(json.loads(Path("reports/employment/gates.json").read_text(encoding="utf-8")), "example")
    report["series"][3]["gates"][0]["checks"][0]["ci"] = [0.1]
    del report["series"][5]["verdict"]
    with pytest.raises(UserError) as caught:
        validate(report, "gates.json")
    assert "$.series[3].gates[0].checks[0].ci" in str(caught.value)
    assert "$.series[5]: 'verdict' is a required property" in str(caught.value)


def test_a_family_reads_back_with_its_series_and_the_failures_its_rule_allows(family: GatesReport) -> None:
    assert family.family and not family.passed and len(family.series or []) == SERIES
    assert family.allowed == 0
    assert {s.name for s in family.failed_series} == {*FAILED, *ERRORS}
    share = GatesReport.from_json(family_json([{"max_failed_share": 0.01}]))
    assert share.passed and share.allowed == 10


# --- worst first ---------------------------------------------------------------------------------


def test_headroom_is_the_conservative_ci_end_against_the_threshold_as_a_share_of_it() -> None:
    def check(ci: tuple[float, float], **threshold: float) -> Check:
        return Check("m", "pass", "", statistic=sum(ci) / 2, ci=ci, threshold=threshold)

    assert headroom(check((0.5, 1.2), max=1.5)) == pytest.approx(0.2)  # the upper end decides a max
    assert headroom(check((0.7, 0.9), min=0.8)) == pytest.approx(-0.125)  # the lower end a min: past it
    assert headroom(check((-0.1, 0.05), max=0.0)) == pytest.approx(-0.05)  # a threshold of 0: absolute
    assert headroom(Check("m", "pass", "", statistic=1.2, threshold={"max": 1.5})) == pytest.approx(0.2)
    assert headroom(Check("m", "pass", "", statistic=1.2)) is None


def test_the_series_are_ordered_errors_then_failures_most_past_first_then_closest_to_failing(
        family: GatesReport) -> None:
    order = [row.series.name for row in ranked(family)]
    assert order[:7] == ["s0005", "s0777", "s0902", HOSTILE, "s0417", "s0033", "s0250"]
    assert order[7:10] == ["s0600", "s0061", "s0998"]
    rooms = [row.headroom for row in ranked(family)[7:]]
    assert rooms == sorted(rooms)  # type: ignore[type-var]


# --- verdict lines and summary.json ------------------------------------------------------------------


def test_the_verdict_lines_name_the_family_and_its_failed_series(family: GatesReport) -> None:
    from modelops_ci.gates.verdict import Verdict

    shown = lines([Verdict(FAMILY, family)])
    assert shown[0] == f"{FAMILY}: FAIL (a family of {SERIES} series)"
    assert shown[1].startswith("  series         fail  7 of 1000 series failed (at most 0 may)")
    assert {line.split(":")[0].strip() for line in shown[2:]} == {*ERRORS, *FAILED}
    many = GatesReport.from_json(family_json(failed={f"s{i:04d}": 1.6 for i in range(0, 200, 10)}))
    listed = lines([Verdict(FAMILY, many)])
    assert len(listed) == 2 + 10 + 1
    assert listed[-1] == f"    and 12 more failed series: every series is in reports/{FAMILY}/report.html " \
                         "(`modelops-ci report`)"


# --- the HTML page: every series, a chart each ---------------------------------------------------------


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.open: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and "series" in (found.get("class") or ""):
            self.rows.append(str(found.get("id")))
        self.svgs += tag == "svg"
        if tag not in ("input", "br", "meta"):
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <rect .../>: closed where it opens

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else ''}>"
        self.open.pop()


def test_the_page_lists_every_series_worst_first_each_with_its_chart(family: GatesReport, page: str) -> None:
    parsed = _Rows()
    parsed.feed(page)
    assert parsed.rows == [f"s-{row.series.name}" for row in ranked(family)]
    assert len(parsed.rows) == len(family.series or []) and parsed.svgs == len(parsed.rows) - len(ERRORS)
    assert parsed.open == []
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;|@team" in page
    assert "data:image/png" not in page  # no matplotlib: a PNG a series would take minutes at 1,000
    assert "7 of 1000 series failed; the policy allows at most 0 (max_failed: 0)" in page
    assert 'id="show-failed"' in page and "tr.series.pass" in html.STYLE  # the filter is CSS: no script
    assert "mase_median" in page


def test_a_chart_puts_the_ci_estimate_and_threshold_on_its_metrics_shared_scale(page: str) -> None:
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr class="series \w+" id="s-(s\d+)">(.*?)</tr>', page)}

    def xs(name: str) -> tuple[float, float, float]:
        bar = re.search(r'<rect x="([\d.]+)" y="4" width="([\d.]+)"', rows[name])
        threshold = re.search(r'<line x1="([\d.]+)" y1="0"', rows[name])
        assert bar and threshold
        return float(bar.group(1)), float(bar.group(1)) + float(bar.group(2)), float(threshold.group(1))

    start, end, threshold = xs("s0417")  # failed: its CI runs past the threshold
    assert start < threshold < end
    start, end, same = xs("s0600")  # passed: its CI ends just inside it, on the same scale
    assert end < same == threshold and threshold - end < 3


def test_the_page_renders_without_a_matplotlib_figure(family: GatesReport, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a family's page drew a matplotlib figure")

    for name in ("curve", "metric_intervals", "group_rates", "drift_feature"):
        monkeypatch.setattr(plots, name, refused)
    assert html.render(family, Inputs({}, {"forecast": [{"time": "2020-01", "actual": 1, "forecast": 1}]}))


# --- markdown: under GitHub's limits, the failed series always shown ------------------------------------


def test_report_md_lists_every_series(family: GatesReport) -> None:
    page = markdown.page(family, Inputs({}, {}))
    names = re.findall(r"^\| \d+ \| (\S+) \|", page, flags=re.MULTILINE)
    assert len(names) == len(family.series or []) and names[:3] == ["s0005", "s0777", "s0902"]
    assert f"All {len(names):,} series, worst first" in page
    assert markdown.size(page) < SUMMARY_LIMIT


def test_the_summary_and_the_comment_show_the_family_its_failures_and_the_closest(family: GatesReport) -> None:
    text = markdown.summary([family])
    body = comment_body([family], Diffs("main"), link="https://github.com/o/r/actions/runs/1")
    assert len(body) <= PR_COMMENT_LIMIT and markdown.size(text) <= PR_COMMENT_LIMIT
    for shown in (text, body):
        assert f"{FAMILY} (a family of {SERIES:,} series)" in shown
        assert "7 of 1000 series failed; the policy allows at most 0" in shown
        assert all(name in shown for name in (*ERRORS, "s0902", "s0417", "s0033", "s0250", *CLOSE))
        assert markdown.text(HOSTILE, 100) in shown and "<script>" not in shown
        table = re.findall(r"^\| (\d+) \| ", shown, flags=re.MULTILINE)
        assert len(table) == len(FAILED) + len(ERRORS) + CLOSEST
        assert f"Every series, with a chart each, is in reports/{FAMILY}/report.html" in shown


@pytest.mark.parametrize("failing", [30, SERIES])
def test_with_many_failed_series_every_text_stays_under_githubs_limits(failing: int, tmp_path: Path) -> None:
    failed = {f"s{i:04d}-{'x' * 60}": 1.6 for i in range(failing)}
    report = GatesReport.from_json(family_json(failed=failed))
    text = markdown.summary([report])
    body = comment_body([report], Diffs("main"))
    assert markdown.size(text) <= PR_COMMENT_LIMIT and len(body) <= PR_COMMENT_LIMIT
    assert append_summary(text, tmp_path / "step-summary.md")
    assert (tmp_path / "step-summary.md").stat().st_size <= SUMMARY_LIMIT
    named = sum(name in text for name in failed)
    if failing == 30:
        assert named == failing  # each failed series is shown, in a row or by name
    else:
        assert named > 30 and re.search(r"and \d+ others", text)
    page = markdown.page(report, Inputs({}, {}))
    assert markdown.size(page) <= markdown.DEFAULT_LIMIT


# --- a repository: bound to the commit through the family's batch stage ------------------------------


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _repo(root: Path, report: dict[str, Any]) -> Path:
    """compiled/jobs/ with its one batch stage and the lock DVC would write after running it."""
    folder = root / "compiled" / FAMILY
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text("pipeline: jobs\nbatch: true\nseries: {}\n", encoding="utf-8")
    (folder / "dvc.yaml").write_text(
        "stages:\n  batch:\n    cmd: modelops-ci step batch jobs\n    wdir: ../..\n    deps:\n"
        "    - compiled/jobs/params.yaml\n    outs:\n    - reports/jobs/series:\n        persist: true\n"
        "    - reports/jobs/gates.json:\n        cache: false\n", encoding="utf-8")
    gates = root / "reports" / FAMILY / "gates.json"
    gates.parent.mkdir(parents=True)
    gates.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  batch:\n    cmd: modelops-ci step batch jobs\n    deps:\n"
        f"    - path: compiled/jobs/params.yaml\n      md5: {_md5(folder / 'params.yaml')}\n    outs:\n"
        "    - path: reports/jobs/series\n      md5: 0123.dir\n"
        f"    - path: reports/jobs/gates.json\n      md5: {_md5(gates)}\n", encoding="utf-8")
    return root


def test_a_familys_verdict_is_this_commits_through_its_batch_stage(tmp_path: Path) -> None:
    root = _repo(tmp_path, family_json(count=40))
    assert gated_pipelines(root) == [FAMILY]
    fresh = read_current(root, FAMILY)
    assert fresh.stale == "" and fresh.report is not None and fresh.report.family
    (root / "compiled/jobs/params.yaml").write_text("pipeline: jobs\nbatch: true\nseries: {a: {}}\n", encoding="utf-8")
    assert "compiled/jobs/params.yaml changed since stage 'batch' ran" in read_current(root, FAMILY).stale
    gates = root / "reports/jobs/gates.json"
    gates.write_text(gates.read_text(encoding="utf-8").replace('"fail"', '"pass"'), encoding="utf-8")
    assert "reports/jobs/gates.json is not the report compiled/jobs/dvc.lock records" in \
        read_current(root, FAMILY).stale


def test_report_and_summary_json_treat_the_family_as_one_unit(tmp_path: Path) -> None:
    root = _repo(tmp_path, family_json())
    written = render_current(root).written
    assert {p.relative_to(root).as_posix() for p in written} == {
        "reports/jobs/report.md", "reports/jobs/report.html", "reports/summary.md"}
    assert (root / "reports/jobs/report.html").read_text(encoding="utf-8").count('<tr class="series') == \
        SERIES
    assert markdown.size((root / "reports/summary.md").read_text(encoding="utf-8")) <= PR_COMMENT_LIMIT
    summary(root)
    said = json.loads((root / "reports/summary.json").read_text(encoding="utf-8"))
    assert said["pipelines"] == {FAMILY: "fail"} and said["verdict"] == "fail"
    assert said["families"] == {FAMILY: {"series": SERIES, "failed": 7, "allowed": 0}}


def test_among_many_pipelines_the_summary_still_lists_a_familys_failed_series(tmp_path: Path) -> None:
    from modelops_ci.gates.result import GateResult
    from modelops_ci.steps.gate import gates_report

    failed = GateResult("performance", "fail", "MASE is 1.7 (90% CI 1.5 to 1.9): above 1.5 " + "x" * 300).to_json()
    others = [GatesReport.from_json(gates_report(f"p{i:02d}", [failed], {})) for i in range(80)]
    many = {f"s{i:04d}": 1.6 for i in range(100, 350, 10)}  # 25: more than the family's reason names
    family = GatesReport.from_json(family_json(failed=many))
    text = markdown.summary([*others, family])
    assert markdown.size(text) <= PR_COMMENT_LIMIT
    assert "and 17 more" in family.reason and all(name in text for name in (*many, *ERRORS))


def test_annotations_point_at_a_failed_familys_failed_series(tmp_path: Path) -> None:
    from modelops_ci.github.annotations import gate_annotations

    write = json.dumps
    (tmp_path / "reports" / FAMILY).mkdir(parents=True)
    (tmp_path / "reports" / FAMILY / "gates.json").write_text(write(family_json(count=30)), encoding="utf-8")
    found = gate_annotations(tmp_path)
    assert sorted((a.pipeline, a.gate, a.status) for a in found) == sorted(
        [*((name, "performance", "fail") for name in FAILED), *((name, "data", "error") for name in ERRORS)])
    assert all(a.file == f"reports/{FAMILY}/gates.json" for a in found)  # no specs here to point into
    allowed = family_json([{"max_failed": 10}], count=30)
    (tmp_path / "reports" / FAMILY / "gates.json").write_text(write(allowed), encoding="utf-8")
    assert gate_annotations(tmp_path) == []  # within the family's rule: nothing blocks
