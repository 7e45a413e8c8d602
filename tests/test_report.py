"""Reports for people: gates.json as markdown (PR comment, job summary) and self-contained HTML,
built from real gate results (the performance gate on synthetic predictions, `gates_report` for
the verdict) plus the fairness/drift details the report draws; the HTML is opened in Chromium.
The last tests render what the gate stages of a real pipeline wrote."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from markdown_it import MarkdownIt

from modelops_ci.errors import UserError
from modelops_ci.gates.performance import assess, classification_sample
from modelops_ci.gates.result import Check, GateResult, error
from modelops_ci.report import html, markdown, plots
from modelops_ci.report.pages import render_reports
from modelops_ci.report.render import (
    drift_pictured,
    findings,
    group_rows,
    headline,
    load,
    schema,
    validate,
)
from modelops_ci.steps.gate import REPORT_VERSION, gates_report
from tests.helpers.cli import run_exe
from tests.helpers.repos import make_ml_repo, write

HOSTILE = ["<script>alert(1)</script>", "a|b", "@acme/model-risk", "`code`", "$\\frac{x", "**bold**",
           "```", '"quoted" & <b>', "[link](javascript:alert(1))", "%%{init: {'theme':'dark'}}%%"]


# --- synthetic but real gate results -----------------------------------------------------------


def performance_gate() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    score = np.clip(0.35 * y + rng.random(600) * 0.65, 0, 1)
    settings = {"confidence": 0.95, "metrics": {"roc_auc": {"min": 0.75}, "brier": {"max": 0.2}}}
    return assess(classification_sample(y, score), settings, resamples=200).to_json()


def fairness_gate(groups: list[str] | None = None, worst: str = "single", best: str = "married") -> dict[str, Any]:
    names = groups or ["married", "single", "separated", "widow", "divorced"]
    rates = {name: 0.41 - 0.04 * i for i, name in enumerate(names)}
    rates[worst], rates[best] = 0.25, 0.41
    sizes = {name: 300 + 97 * i for i, name in enumerate(names)}
    by_group = [{"feature": "Marital", "group": g, "metric": "selection_rate", "value": rates[g],
                 "ci": [rates[g] - 0.04, rates[g] + 0.04], "n": sizes[g]} for g in names]
    by_group += [{"feature": "age_band", "group": g, "metric": "selection_rate", "value": v, "ci": [v - 0.05, v + 0.05],
                  "n": 200} for g, v in (("0-25", 0.31), ("25-40", 0.36), ("40-60", 0.33), ("60-120", 0.34))]
    checks = [
        Check("demographic_parity_ratio[Marital]", "fail",
              f"demographic parity ratio is 0.61 (95% CI 0.52 to 0.70) between '{worst}' and '{best}': below 0.8",
              statistic=0.61, ci=(0.52, 0.70), threshold={"min": 0.8}, n=sum(sizes.values()),
              details={"metric": "demographic_parity_ratio", "feature": "Marital", "worst_group": worst,
                       "best_group": best}),
        Check("equalized_odds_difference[Marital]", "pass", "equalized odds difference is 0.05 (95% CI 0.02 to "
              "0.08): at most 0.1", statistic=0.05, ci=(0.02, 0.08), threshold={"max": 0.1},
              details={"metric": "equalized_odds_difference", "feature": "Marital", "worst_group": worst,
                       "best_group": best}),
        Check("demographic_parity_ratio[age_band]", "pass", "demographic parity ratio is 0.86 (95% CI 0.81 to "
              "0.91): at least 0.8", statistic=0.86, ci=(0.81, 0.91), threshold={"min": 0.8},
              details={"metric": "demographic_parity_ratio", "feature": "age_band", "worst_group": "0-25",
                       "best_group": "25-40"}),
    ]
    reason = f"demographic parity ratio for Marital is 0.61 (95% CI 0.52 to 0.70): below 0.8 ('{worst}')"
    return GateResult("fairness", "fail", reason, confidence=0.95, n=sum(sizes.values()), groups=sizes,
                      checks=checks, details={"by_group": by_group, "outcome": "approves"}).to_json()


def drift_gate(features: int = 12, advisory: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    checks = []
    for i in range(features):
        moved = i % 4 == 1
        if i % 3 == 2:
            labels = ["owner", "rent", "parents", "other", "private"]
            reference = rng.integers(50, 400, len(labels))
            current = reference[::-1] if moved else reference + rng.integers(0, 20, len(labels))
            details = {"kind": "categorical", "test": "chi2", "drifted": moved,
                       "category_counts": {"labels": labels, "reference": reference.tolist(),
                                           "current": current.tolist()}}
        else:
            edges = np.linspace(0, 100, 21)
            reference = np.histogram(rng.normal(50, 15, 2000), edges)[0]
            current = np.histogram(rng.normal(60 if moved else 50, 15, 800), edges)[0]
            details = {"kind": "numeric", "test": "ks", "drifted": moved, "histogram": {
                "edges": edges.tolist(), "reference": reference.tolist(), "current": current.tolist()}}
        p = 1e-6 if moved else 0.4 + 0.01 * i
        checks.append(Check(f"feature_{i:02d}", "fail" if moved else "pass",
                            f"{'changed' if moved else 'no evidence of change'} (adjusted p = {p:.2g})",
                            statistic=0.21 if moved else 0.03, p_value=p, n=2800, details=details))
    drifted = sum(c.status == "fail" for c in checks)
    return GateResult("drift", "fail" if drifted else "pass", f"{drifted} of {features} features drifted "
                      "(FDR 0.05): above the 30% share", advisory=advisory, alpha=0.05, checks=checks,
                      details={"max_drifted_share": 0.2}).to_json()


def credit_report(**fairness: Any) -> dict[str, Any]:
    gates = [GateResult("data_contract", "pass", "all 14 columns match the contract").to_json(),
             performance_gate(), fairness_gate(**fairness), drift_gate()]
    return gates_report("credit-risk", gates, {"policies": ["finance-governance"]})


def plots_data() -> dict[str, list[dict[str, float]]]:
    roc = [{"fpr": float(x), "tpr": float(x ** 0.4)} for x in np.linspace(0, 1, 50)]
    calibration = [{"predicted": float(x), "observed": float(min(1, x * 1.1))} for x in np.linspace(0.05, 0.95, 10)]
    return {"roc": roc, "calibration": calibration}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def make_repo(root: Path) -> Path:
    """reports/ of two pipelines as the gate and evaluate stages leave them."""
    write_json(root / "reports/credit-risk/gates.json", credit_report())
    for name, points in plots_data().items():
        write_json(root / f"reports/credit-risk/plots/{name}.json", points)
    write_json(root / "reports/credit-risk/metrics.json", {"roc_auc": 0.83, "brier": 0.145})
    passing = gates_report("arrivals-us", [GateResult("performance", "pass", "MASE is 0.7 (90% CI 0.6 to 0.8): "
                                                      "at most 1").to_json()], {"policies": ["forecasting"]})
    write_json(root / "reports/arrivals-us/gates.json", passing)
    write_json(root / "reports/arrivals-us/plots/forecast.json",
               [{"time": f"2019-{m:02d}", "actual": 100.0 + m, "forecast": 99.0 + m} for m in range(1, 13)])
    return root


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
    assert headline(credit_report()) == ("Not ready for production: the model approves “single” (Marital) at 61% of "
                                         "the rate for “married” (policy: at least 80%)")
    passing = gates_report("p", [performance_gate()], {})
    assert headline(passing).startswith("Ready for production: its one required gate passed")
    broken = gates_report("p", [error("fairness", "no result: fairness.json is missing or unreadable").to_json()], {})
    assert headline(broken) == ("Not ready for production: the fairness check could not be run: no result: "
                                "fairness.json is missing or unreadable")


def test_a_check_failed_on_its_ci_says_how_bad_it_may_be() -> None:
    report = credit_report()
    check = report["gates"][2]["checks"][0]
    check.update(statistic=0.85, ci=[0.74, 0.95])
    assert "at 85% of the rate for “married”, possibly as low as 74% (policy: at least 80%)" in headline(report)


# --- markdown ----------------------------------------------------------------------------------


def to_html(text: str) -> str:
    """GitHub-like rendering: CommonMark with tables, raw HTML passed through as GitHub does."""
    return str(MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text))


def test_markdown_puts_the_verdict_first_and_collapses_the_statistics() -> None:
    text = markdown.render(credit_report())
    first, _, second = text.splitlines()[:3]
    assert first == "## ❌ credit-risk: Not ready for production"
    assert second.startswith("**Not ready for production: the model approves “single”")
    assert text.index("<details><summary>❌ Fairness") > text.index("| Gate | Result | In plain words |")
    assert "To review (does not block):" in text and "drift" in text.lower()
    rendered = to_html(text)
    assert rendered.count("<details>") == rendered.count("</details>") == 5  # charts + 4 gates
    assert "<table>" in rendered


def test_markdown_draws_mermaid_charts() -> None:
    text = markdown.render(credit_report())
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
    text = markdown.render(credit_report(groups=HOSTILE, worst=HOSTILE[0], best=HOSTILE[1]))
    rendered = to_html(text)
    benign = to_html(markdown.render(credit_report(groups=BENIGN, worst=BENIGN[0], best=BENIGN[1])))
    assert tags(rendered) == tags(benign)  # data never adds markup: no tag, link, emphasis, table cell
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # shown, not run
    assert "@\u2060acme/model-risk" in text  # no team is pinged
    for block in re.findall(r"```mermaid\n(.*?)```", text, re.S):
        for line in block.splitlines():
            assert "%%" not in line and "`" not in line and "<" not in line and "{" not in line.split('"', 1)[-1]
            assert line.count('"') % 2 == 0
    assert text.count("```") % 2 == 0  # every fence closed


def test_markdown_stays_under_the_limit_with_a_huge_number_of_checks() -> None:
    report = credit_report()
    report["gates"][3] = drift_gate(features=0, advisory=False)
    checks = [{"name": f"feature_{i:06d}|<x>", "status": "fail" if i % 1000 == 7 else "pass",
               "reason": "no evidence of change " * 5, "statistic": 0.01, "p_value": 0.5, "n": 1000}
              for i in range(100_000)]
    report["gates"][3]["checks"] = checks
    for limit in (markdown.DEFAULT_LIMIT, markdown.PR_COMMENT_LIMIT, 4_000):
        text = markdown.render(report, limit=limit)
        assert markdown.size(text) <= limit
        assert text.startswith("## ❌ credit-risk: Not ready for production")
        assert text.rstrip().endswith("</sub>")
    text = markdown.render(report)
    assert "feature\\_000007" in text  # failures come first
    assert re.search(r"_\d+ more checks not shown \(least severe first\)", text)
    assert to_html(text).count("<details>") == to_html(text).count("</details>")
    summary = markdown.summary([report, report], limit=markdown.PR_COMMENT_LIMIT)
    assert markdown.size(summary) <= markdown.PR_COMMENT_LIMIT
    assert len(html.render(report).encode()) < 3_000_000  # the HTML lists the most severe checks only


# --- HTML --------------------------------------------------------------------------------------


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_with_plots() -> None:
    from modelops_ci.report.render import Inputs

    page_text = html.render(credit_report(), Inputs({"roc_auc": 0.83}, plots_data()))
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
    page_text = html.render(credit_report(groups=HOSTILE, worst=HOSTILE[0], best=HOSTILE[1]))
    assert tags(page_text) == tags(html.render(credit_report(groups=BENIGN, worst=BENIGN[0], best=BENIGN[1])))
    page = Page()
    page.feed(page_text)
    assert "<script>alert(1)</script>" in "".join(page.text)  # shown as text


def test_plots_are_deterministic_and_take_any_label() -> None:
    rows = [{"group": name, "value": 0.3, "ci": [0.2, 0.4], "n": 10} for name in HOSTILE]
    first = plots.group_rates("$x$", "selection_rate", rows, floor=0.25)
    assert first is not None and first == plots.group_rates("$x$", "selection_rate", rows, floor=0.25)
    assert plots.curve("roc", [{"fpr": 0.0}]) is None
    assert plots.drift_feature({"name": "x", "status": "pass", "details": {"histogram": {"edges": [0, 1]}}}) is None
    # the drift gate may give its ECDF points instead of a histogram
    x = [0.0, 1.0, 2.0, 3.0]
    ecdf = {"x": x, "reference": [0.1, 0.5, 0.9, 1.0], "current": [0.0, 0.2, 0.6, 1.0]}
    assert plots.drift_feature({"name": "x", "status": "warn", "details": {"ecdf": ecdf}}) is not None


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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: see .ci/run)")
def test_the_html_report_renders_in_a_browser(tmp_path: Path) -> None:
    from matplotlib.image import imread

    root = make_repo(tmp_path / "repo")
    render_reports(root)
    shot = tmp_path / "report.png"
    page = (root / "reports/credit-risk/report.html").resolve()
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape == (2000, 1280, 3)
    assert pixels.std() > 0.1  # not blank
    banner = pixels[5:60, 20:1260]
    red = (np.abs(banner - np.array([0xCF, 0x22, 0x2E]) / 255).max(axis=-1) < 0.02).mean()
    assert red > 0.5, "the red verdict banner is missing"
    plotted = (np.abs(pixels - np.array([0x4C, 0x72, 0xB0]) / 255).max(axis=-1) < 0.02).sum()
    assert plotted > 500, "no plot was drawn"


# --- what a real pipeline's gate stages wrote --------------------------------------------------

LENDING = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: lending}
spec:
  selector: {names: [loans]}
  gates:
    performance: {confidence: 0.95, metrics: {roc_auc: {min: 0.6}}}
    compare: {metric: roc_auc, against: production, allow_first: true}
    fairness:
      metrics: {demographic_parity_ratio: {min: 0.8}, equal_opportunity_difference: {max: 0.1}}
      min_group_size: 20
      inconclusive_warns: true
    drift: {alpha: 0.05, correction: fdr_bh, max_drifted_share: 0.3}
  stages: [dev, production]
"""
STATISTICS_JARGON = re.compile(r"\bCI\b|p ?=|\bKS\b|chi|Wasserstein|Jensen|PSI|statistic")


@pytest.fixture(scope="module")
def _gated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report") / "ml"


@pytest.fixture
def gated(_gated_template: Path, tmp_path: Path) -> Path:
    """The `ml_repo` repo (loans: sensitive region and age_band) under a policy with performance,
    compare, fairness and drift gates, run once per module through its stages, then copied."""
    if not _gated_template.exists():
        make_ml_repo(_gated_template)  # here, under this test's isolated HOME and git identity
        write(_gated_template, "policies/lending.yaml", LENDING)
        spec = _gated_template / "pipelines/loans.yaml"
        spec.write_text(spec.read_text(encoding="utf-8") + "  drift: {reference: train}\n", encoding="utf-8")
        assert run_exe("compile", cwd=_gated_template).exit_code == 0
        ran = run_exe("run", "loans", cwd=_gated_template)
        assert ran.exit_code in (0, 1), ran.stdout + ran.stderr  # 1: a gate failed, which is a result
    return Path(shutil.copytree(_gated_template, tmp_path / "ml", symlinks=True))


def gate_of(report: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in report["gates"] if g["gate"] == kind)
    return found


def test_real_gates_read_as_one_short_plain_sentence_each(gated: Path) -> None:
    report = load(gated / "reports/loans/gates.json")  # checked against the shipped schema
    assert {g["gate"] for g in report["gates"]} == {"performance", "compare", "fairness", "drift"}
    for kind in ("fairness", "drift"):  # the CLI prints these on one line each
        assert len(gate_of(report, kind)["reason"]) <= 250, gate_of(report, kind)["reason"]
    for finding in findings(report):
        assert len(finding.text) <= 300, finding
        assert finding.text.count("; ") <= 1, finding  # not every check's reason joined
        if finding.gate != "performance":
            assert not STATISTICS_JARGON.search(finding.text), finding
    said = {f.gate: f.text for f in findings(report)}
    assert re.fullmatch(r"(none|\d+) of the 4 input features changed significantly since the reference data.*",
                        said["drift"]) or said["drift"].startswith(("none of the 4", "1 of 4", "2 of 4"))
    assert said["compare"] == "there is no production model to compare with yet, and the policy allows a first one"
    fairness = gate_of(report, "fairness")
    assert "“" in said["fairness"] or said["fairness"].startswith("no group is treated differently")
    if fairness["status"] != "pass":
        assert said["fairness"] != fairness["reason"]

    render_reports(gated, ["loans"])
    text = (gated / "reports/loans/report.md").read_text(encoding="utf-8")
    table = text[text.index("| Gate | Result | In plain words |"):].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) == 4 and all(row.count(" | ") == 2 for row in table)
    statistics = text[text.index("<details><summary>⚠️ Fairness") if "⚠️ Fairness" in text else
                      text.index("Fairness: "):]
    assert "demographic\\_parity\\_ratio" in statistics  # the statistics, collapsed
    cli = run_exe("gate", "loans", cwd=gated)
    gate_lines = [line for line in cli.stdout.splitlines() if line.startswith("  ")]
    assert len(gate_lines) == 4 and all(len(line) <= 300 for line in gate_lines), cli.stdout


def sections(page_text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="gate-(\w+)">(.*?)</section>', page_text, re.S))


def test_real_report_html_draws_the_groups_and_the_drift(gated: Path) -> None:
    report = load(gated / "reports/loans/gates.json")
    fairness, drift = gate_of(report, "fairness"), gate_of(report, "drift")
    pictured = drift_pictured(drift, html.MAX_DRIFT_PLOTS, html.QUIET_DRIFT_PLOTS)
    assert 1 <= len(pictured) <= html.MAX_DRIFT_PLOTS
    for check in pictured:  # compact: a few dozen numbers a feature
        details = check["details"]
        assert len(details.get("histogram", {"edges": []})["edges"]) <= 31
        assert len(details.get("ecdf", {"x": []})["x"]) <= 30
        assert len(details.get("category_counts", {"labels": []})["labels"]) <= 16
    pictures = [c for c in drift["checks"] if {"histogram", "ecdf", "category_counts"} & set(c["details"])]
    # the gate gives plot data to the features the report draws, and no more
    assert sorted(c["name"] for c in pictures) == sorted(c["name"] for c in pictured)
    rates = group_rows(fairness)
    assert {feature for feature, _ in rates} == {"region", "age_band", "region & age_band"}
    assert {metric for _, metric in rates} == {"selection_rate", "true_positive_rate"}

    render_reports(gated, ["loans"])
    page = sections((gated / "reports/loans/report.html").read_text(encoding="utf-8"))
    for kind, expected in (("fairness", min(len(rates), html.MAX_FAIRNESS_PLOTS)), ("drift", len(pictured))):
        images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page[kind])
        assert len(images) == expected, kind
        assert all(base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page["fairness"])
    assert len(captions) == len(rates) and all("confidence intervals" in c for c in captions)


def test_real_reports_are_deterministic(gated: Path) -> None:
    outputs = ["reports/loans/gates.json", *(f"reports/loans/gates/{k}.json" for k in ("fairness", "drift"))]
    before = {p: (gated / p).read_bytes() for p in outputs}
    rendered = {p: p.read_bytes() for p in render_reports(gated, ["loans"])}
    assert run_exe("gate", "loans", cwd=gated).exit_code in (0, 1)  # the gates evaluated again
    assert {p: (gated / p).read_bytes() for p in outputs} == before
    assert {p: p.read_bytes() for p in render_reports(gated, ["loans"])} == rendered
