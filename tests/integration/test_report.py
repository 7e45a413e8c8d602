"""Reports for people: gates.json as markdown (PR comment, job summary) and self-contained HTML,
built from real gate results (the performance gate on synthetic predictions, `gates_report` for
the verdict) plus the fairness/drift details the report draws; the HTML is opened in Chromium.
The last tests render what the gate stages of a real pipeline wrote."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from modelops_ci.gates.result import GateResult
from modelops_ci.gates.verdict import GatesReport, load
from modelops_ci.report import html
from modelops_ci.report.figures import drift_pictured, group_rows
from modelops_ci.report.pages import render_reports
from modelops_ci.report.plots import CURRENT, REFERENCE
from modelops_ci.report.words import findings
from tests.helpers.cli import run_exe
from tests.helpers.reports import make_repo
from tests.helpers.repos import write
from tests.helpers.templates import copy_repo, trained_ml_copy

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

# --- files -------------------------------------------------------------------------------------


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, tmp_path: Path, height: int = 2000) -> np.ndarray:
    """The page as headless Chromium draws it, 1280 pixels wide: RGB in [0, 1]."""
    from matplotlib.image import imread

    shot = tmp_path / f"{page.stem}.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size=1280,{height}",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    pixels: np.ndarray = imread(str(shot))[..., :3]
    assert pixels.shape == (height, 1280, 3)
    assert pixels.std() > 0.1  # not blank
    return pixels


def of_colour(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Which of `pixels` have the colour `#rrggbb`."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    matched: np.ndarray = np.abs(pixels - rgb).max(axis=-1) < 0.02
    return matched


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: see .ci/run)")
def test_the_html_report_renders_in_a_browser(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    render_reports(root)
    pixels = screenshot(root / "reports/credit-risk/report.html", tmp_path)
    assert of_colour(pixels[5:60, 20:1260], "#cf222e").mean() > 0.5, "the red verdict banner is missing"
    assert of_colour(pixels, REFERENCE).sum() > 500, "no plot was drawn"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: see .ci/run)")
def test_the_rollout_report_renders_its_charts_in_a_browser(tmp_path: Path) -> None:
    """`modelops-ci rollout`'s page (written by its write_report) for an abort and a long step: the
    red banner, and the inline SVG charts drawn (the metric lines in blue, the champion's traffic in
    orange, the interval bars in green), no part of which is an image."""
    from modelops_ci.commands.rollout import write_report
    from tests.helpers.rollout_log import decided, log, model

    aborted = decided(log("credit", 150, 3, errors=0.2), model("credit"), 2)
    long_step = decided(log("busy", 6, 201, errors=0.03, interval=60.0),
                        model("busy", interval=60.0, min_samples=5, failure_limit=1_000), 200)
    written = write_report(tmp_path / "reports/rollout", "production", [long_step, aborted])
    page = written[2]
    assert page.name == "production.html" and "<img" not in page.read_text(encoding="utf-8")
    pixels = screenshot(page, tmp_path, height=2400)
    assert of_colour(pixels[5:60, 20:1260], "#cf222e").mean() > 0.5, "the red banner of an abort is missing"
    assert of_colour(pixels, REFERENCE).sum() > 500, "no metric line was drawn"
    assert of_colour(pixels, CURRENT).sum() > 200, "no champion traffic line was drawn"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: see .ci/run)")
def test_the_monitoring_report_renders_its_charts_in_a_browser(tmp_path: Path) -> None:
    """`monitor --traffic`'s page for a model whose last hour drifted: the red banner of an open
    alert and the inline SVG charts (the measures' lines in blue), no part of which is an image."""
    from tests.helpers.monitoring import monitoring_report

    _, _, page = monitoring_report(tmp_path / "reports/monitoring")
    assert page.name == "production.html" and "<img" not in page.read_text(encoding="utf-8")
    pixels = screenshot(page, tmp_path, height=2400)
    assert of_colour(pixels[5:60, 20:1260], "#cf222e").mean() > 0.5, "the red banner of an open alert is missing"
    assert of_colour(pixels, REFERENCE).sum() > 500, "no measure's line was drawn"


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
def gated(_gated_template: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """The `ml_repo` repo (loans: sensitive region and age_band) under a policy with performance,
    compare, fairness and drift gates, run once per module through its stages, then copied. It
    starts from the session's trained repo: only the stages the policy and drift add run here."""
    if not _gated_template.exists():
        trained_ml_copy(tmp_path_factory, _gated_template)
        write(_gated_template, "policies/lending.yaml", LENDING)
        spec = _gated_template / "pipelines/loans.yaml"
        spec.write_text(spec.read_text(encoding="utf-8") + "  drift: {reference: train}\n", encoding="utf-8")
        assert run_exe("compile", cwd=_gated_template).exit_code == 0
        ran = run_exe("run", "loans", cwd=_gated_template)
        assert ran.exit_code in (0, 1), ran.stdout + ran.stderr  # 1: a gate failed, which is a result
    return copy_repo(_gated_template, tmp_path / "ml")


def gate_of(report: GatesReport, kind: str) -> GateResult:
    return next(g for g in report.gates if g.gate == kind)


def test_real_gates_read_as_one_short_plain_sentence_each(gated: Path) -> None:
    report = load(gated / "reports/loans/gates.json")  # checked against the shipped schema
    assert {g.gate for g in report.gates} == {"performance", "compare", "fairness", "drift"}
    for kind in ("fairness", "drift"):  # the CLI prints these on one line each
        assert len(gate_of(report, kind).reason) <= 250, gate_of(report, kind).reason
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
    if fairness.status != "pass":
        assert said["fairness"] != fairness.reason

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
        details = check.details
        assert len(details.get("histogram", {"edges": []})["edges"]) <= 31
        assert len(details.get("ecdf", {"x": []})["x"]) <= 30
        assert len(details.get("category_counts", {"labels": []})["labels"]) <= 16
    pictures = [c for c in drift.checks if {"histogram", "ecdf", "category_counts"} & set(c.details)]
    # the gate gives plot data to the features the report draws, and no more
    assert sorted(c.name for c in pictures) == sorted(c.name for c in pictured)
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
