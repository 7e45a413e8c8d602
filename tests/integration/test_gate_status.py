"""Gate status end to end on a real trained pipeline: bad predictions are an `error` result with a
reason (never an exception), `gate` fails closed on a blocking error and not on an advisory one, and
`report` and `ci` write the JSON, markdown and self-contained HTML reports."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops_ci import gates
from modelops_ci.gates import fairness, performance
from modelops_ci.gates.context import GateContext
from modelops_ci.steps import gate
from modelops_ci.steps.context import load_context
from tests.helpers.cli import run_cli, run_exe
from tests.helpers.repos import git, write
from tests.helpers.templates import copy_repo, trained_ml_copy

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

PREDICTIONS = "reports/loans/predictions.parquet"
PASSING = "{confidence: 0.9, metrics: {roc_auc: {min: 0.6}}}"
POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {{name: status}}
spec:
  selector: {{names: [loans]}}
  gates:
    performance: {performance}
    fairness: {{metrics: {{demographic_parity_ratio: {{min: 0.0}}}}, min_group_size: 5, intersectional: false}}
  stages: [dev, production]
"""


def govern(repo: Path, performance_gate: str = PASSING) -> None:
    """Write the policy with these performance settings and compile it."""
    write(repo, "policies/status.yaml", POLICY.format(performance=performance_gate))
    compiled = run_exe("compile", cwd=repo)
    assert compiled.exit_code == 0, compiled.stdout + compiled.stderr


@pytest.fixture(scope="module")
def _trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate-status") / "ml"


@pytest.fixture
def trained(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """`ml_repo` with a performance and a fairness gate on loans, run once per module, then copied.
    It starts from the session's trained repo: only the gates run here."""
    if not _trained_template.exists():
        trained_ml_copy(tmp_path_factory, _trained_template)
        govern(_trained_template)
        git("add", "-A", cwd=_trained_template)
        git("commit", "-qm", "gates", cwd=_trained_template)
        ran = run_exe("run", "loans", cwd=_trained_template)
        assert ran.exit_code == 0, ran.stdout + ran.stderr
        assert "loans: PASS" in ran.stdout
    return copy_repo(_trained_template, tmp_path / "ml")


def predictions(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / PREDICTIONS)


def tamper(repo: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(predictions(repo)).to_parquet(repo / PREDICTIONS, index=False)


def gate_line(stdout: str, kind: str) -> str:
    found = [line for line in stdout.splitlines() if line.startswith(f"  {kind} ")]
    assert len(found) == 1, stdout
    return found[0]


# --- 1. bad predictions are an `error` result, through the gate's evaluate entry point ----------


def test_the_untouched_pipeline_passes_both_gates(trained: Path) -> None:
    """The baseline the tampering tests depart from: the same inputs, unchanged, pass."""
    ctx = load_context(trained, "loans")
    for kind in ("performance", "fairness"):
        result = gate.evaluate(ctx, kind)
        assert result.status == "pass", result.reason
        assert result.n == len(predictions(trained)) == 120


def _nan(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(y_score=frame["y_score"].where(frame.index % 10 != 0, np.nan))


def _inf(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(y_score=frame["y_score"].where(frame.index != 7, np.inf))


def _outside(frame: pd.DataFrame) -> pd.DataFrame:
    score = frame["y_score"].copy()
    score.iloc[[1, 2, 3]] = 1.2
    score.iloc[[4, 5]] = -0.1
    return frame.assign(y_score=score)


@pytest.mark.parametrize(("change", "problem"), [
    (_nan, "12 of 120 y_score are NaN or infinite"),
    (_inf, "1 of 120 y_score are NaN or infinite"),
    (_outside, "5 predicted probabilities are outside [0, 1]"),
], ids=["nan", "inf", "outside-0-1"])
def test_bad_predictions_on_disk_make_the_performance_gate_an_error(
        trained: Path, change: Callable[[pd.DataFrame], pd.DataFrame], problem: str) -> None:
    tamper(trained, change)
    expected = f"cannot assess the predictions: {problem}"

    result = gate.evaluate(load_context(trained, "loans"), "performance")
    assert (result.status, result.reason) == ("error", expected)
    assert result.blocks and not result.advisory

    # the DVC stage runs the same entry point: it exits 0 and records the error
    step = run_cli("step", "gate-performance", "loans", cwd=trained)
    assert step.exit_code == 0, step.stderr
    assert "status=error" in step.stdout
    written = json.loads((trained / "reports/loans/gates/performance.json").read_text(encoding="utf-8"))
    assert (written["gate"], written["status"], written["reason"]) == ("performance", "error", expected)


def _settings(repo: Path, kind: str) -> tuple[GateContext, dict[str, Any]]:
    """The pipeline's real context, and the compiled (policy-merged) settings of gate `kind`."""
    step = load_context(repo, "loans")
    return GateContext(step), dict(step.params["gates"][kind])


def test_predictions_and_labels_of_different_lengths_are_a_performance_error(trained: Path) -> None:
    frame = predictions(trained)
    ctx, settings = _settings(trained, "performance")
    assert performance.evaluate(ctx, settings).status == "pass"  # the same context, before: fine

    # one prediction short of the labels
    short = GateContext(ctx.step, {"predictions": {"y_true": frame["y_true"], "y_score": frame["y_score"].iloc[:-1]}})
    result = gates.evaluate("performance", short, settings)
    assert (result.status, result.reason) == ("error", "cannot assess the predictions: 119 predictions for 120 labels")

    # both predict_proba columns stored as y_score: twice as many predictions as labels
    doubled = pd.concat([frame, frame[["y_score"]]], axis=1)
    result = gates.evaluate("performance", GateContext(ctx.step, {"predictions": doubled}), settings)
    assert (result.status, result.reason) == ("error", "cannot assess the predictions: 240 predictions for 120 labels")


def test_mismatched_lengths_are_a_fairness_error(trained: Path) -> None:
    frame = predictions(trained)
    ctx, settings = _settings(trained, "fairness")
    assert fairness.evaluate(ctx, settings).status == "pass"

    doubled = pd.concat([frame, frame[["y_pred"]]], axis=1)
    result = gates.evaluate("fairness", GateContext(ctx.step, {"predictions": doubled}), settings)
    assert (result.status, result.reason) == ("error", "cannot assess fairness: 240 predictions for 120 labels")

    two_regions = pd.concat([frame, frame[["region"]]], axis=1)
    result = gates.evaluate("fairness", GateContext(ctx.step, {"predictions": two_regions}), settings)
    assert result.status == "error"
    assert result.reason == "cannot assess fairness: sensitive feature 'region' has 240 values for 120 rows"


def test_nan_predictions_on_disk_make_the_fairness_gate_an_error(trained: Path) -> None:
    tamper(trained, lambda f: f.assign(y_pred=f["y_pred"].astype(float).where(f.index != 3, np.nan)))
    result = gate.evaluate(load_context(trained, "loans"), "fairness")
    assert result.status == "error"
    assert result.reason == "cannot assess fairness: 1 of 120 predictions are NaN or infinite"


# --- 2. `modelops-ci gate` turns the verdict into the exit code ---------------------------------


def test_gate_exits_1_naming_a_failed_blocking_gate(trained: Path) -> None:
    govern(trained, "{confidence: 0.9, metrics: {roc_auc: {min: 0.99}}}")  # far above the model's ~0.84

    result = run_exe("gate", "loans", cwd=trained)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "loans: FAIL"
    line = gate_line(result.stdout, "performance")
    assert line.split()[:2] == ["performance", "fail"] and "not surely at least 0.99" in line
    assert gate_line(result.stdout, "fairness").split()[:2] == ["fairness", "pass"]
    assert "gate(s) failed: loans: performance: ROC AUC is" in result.stderr
    report = json.loads((trained / "reports/loans/gates.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "fail" and report["reason"].startswith("performance: ROC AUC is")


def test_gate_fails_closed_on_an_error_unless_the_gate_is_advisory(trained: Path) -> None:
    tamper(trained, _nan)
    problem = "cannot assess the predictions: 12 of 120 y_score are NaN or infinite"

    blocking = run_exe("gate", "loans", cwd=trained)
    assert blocking.exit_code == 1, blocking.stdout + blocking.stderr
    assert blocking.stdout.splitlines()[0] == "loans: FAIL"
    assert gate_line(blocking.stdout, "performance") == f"  performance    error {problem}"
    assert f"gate(s) failed: loans: performance: {problem}" in blocking.stderr

    govern(trained, "{advisory: true, confidence: 0.9, metrics: {roc_auc: {min: 0.6}}}")
    advisory = run_exe("gate", "loans", cwd=trained)
    assert advisory.exit_code == 0, advisory.stdout + advisory.stderr
    assert advisory.stdout.splitlines()[0] == "loans: PASS"
    assert gate_line(advisory.stdout, "performance") == f"  performance    error (advisory) {problem}"
    report = json.loads((trained / "reports/loans/gates.json").read_text(encoding="utf-8"))
    performance_gate = next(g for g in report["gates"] if g["gate"] == "performance")
    assert (report["verdict"], performance_gate["status"], performance_gate["advisory"]) == ("pass", "error", True)


# --- 3. `modelops-ci report` -------------------------------------------------------------------


class Links(HTMLParser):
    """Every tag and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset", "data")]


def assert_self_contained(page: str) -> None:
    links = Links()
    links.feed(page)
    assert not [u for u in links.urls if re.match(r"\s*(https?:)?//", u, re.I)], links.urls
    assert links.urls and all(u.startswith("data:image/png;base64,") for u in links.urls), links.urls
    assert "script" not in links.tags and "link" not in links.tags and "iframe" not in links.tags
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:)?//", page, re.I)


def test_report_writes_markdown_html_and_the_gates_json(trained: Path) -> None:
    for stale in ("reports/loans/gates.json", "reports/loans/gates", "reports/summary.md"):
        path = trained / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert run_exe("gate", "loans", cwd=trained).exit_code == 0  # writes the JSON again

    result = run_exe("report", "loans", cwd=trained)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["wrote reports/loans/report.md", "wrote reports/loans/report.html",
                                          "wrote reports/summary.md"]
    gates = json.loads((trained / "reports/loans/gates.json").read_text(encoding="utf-8"))
    assert gates["pipeline"] == "loans" and gates["verdict"] == "pass"
    assert [g["gate"] for g in gates["gates"]] == ["performance", "fairness"]
    assert (trained / "reports/loans/gates/performance.json").is_file()
    markdown = (trained / "reports/loans/report.md").read_text(encoding="utf-8")
    assert markdown.startswith("## ✅ loans: Ready for production\n\n"
                               "**Ready for production: all 2 required gates passed.**")
    page = (trained / "reports/loans/report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>loans: Ready for production</title>" in page
    assert_self_contained(page)
    summary = (trained / "reports/summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# ✅") and "| loans |" in summary


# --- 4. `modelops-ci ci` -----------------------------------------------------------------------


def test_ci_runs_the_gates_and_writes_gates_json_and_the_reports(trained: Path) -> None:
    govern(trained, "{confidence: 0.9, metrics: {roc_auc: {min: 0.99}}}")  # a blocking failure
    written = ["reports/loans/gates.json", "reports/loans/report.md", "reports/loans/report.html",
               "reports/summary.md"]
    for path in written:
        (trained / path).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}  # no job summary page

    result = run_exe("ci", cwd=trained, env=env)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert "compile --check: 2 pipeline(s) fresh" in result.stdout
    assert "reports: 3 report pages written; the summary is reports/summary.md" in result.stdout
    assert result.stdout.splitlines()[-1] == "verdict: 1 of 1 pipeline failed its gates"
    assert "gate(s) failed: loans: performance:" in result.stderr
    for path in written:
        assert (trained / path).is_file(), path
    gates = json.loads((trained / "reports/loans/gates.json").read_text(encoding="utf-8"))
    assert gates["verdict"] == "fail"
    check = next(g for g in gates["gates"] if g["gate"] == "performance")["checks"][0]
    assert (check["name"], check["status"], check["threshold"]) == ("roc_auc", "fail", {"min": 0.99})
    markdown = (trained / "reports/loans/report.md").read_text(encoding="utf-8")
    assert markdown.startswith("## ❌ loans: Not ready for production\n\n**Not ready for production: ROC AUC")
    page = (trained / "reports/loans/report.html").read_text(encoding="utf-8")
    assert "<title>loans: Not ready for production</title>" in page
    assert_self_contained(page)
    assert (trained / "reports/summary.md").read_text(encoding="utf-8").startswith(
        "# ❌ 1 of 1 pipeline not ready for production")
