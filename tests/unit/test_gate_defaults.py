"""The README's table of gate defaults says what the code uses when a policy leaves a setting out, and
the reports print the alpha each p-value was judged at."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci.gates import compare, fairness, performance
from modelops_ci.gates import drift as drift_gate
from modelops_ci.gates.decision import optimality, violations
from modelops_ci.gates.drift import multivariate
from modelops_ci.gates.result import Check, GateResult
from modelops_ci.report import html, markdown
from modelops_ci.report.format import p_value_text
from modelops_ci.steps.gate import gates_report
from modelops_ci.transform import sensitive_inputs
from tests.helpers.reports import typed

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| gate | setting | default |"

# (gate, setting as the README names it) -> what the code uses
CODE: dict[tuple[str, str], Any] = {
    ("performance", "`confidence`"): performance.DEFAULT_CONFIDENCE,
    ("performance", "bootstrap resamples"): performance.RESAMPLES,
    ("compare", "`confidence`"): compare.DEFAULT_CONFIDENCE,
    ("compare", "`margin`"): compare.DEFAULT_MARGIN,
    ("compare", "`against`"): compare.DEFAULT_STAGE,
    ("compare", "bootstrap resamples"): compare.RESAMPLES,
    ("fairness", "`metrics`"): fairness.DEFAULT_METRICS,
    ("fairness", "`min_group_size`"): fairness.DEFAULT_MIN_GROUP_SIZE,
    ("fairness", "`confidence`"): fairness.DEFAULT_CONFIDENCE,
    ("fairness", "bootstrap resamples"): fairness.RESAMPLES,
    ("fairness", "`inconclusive_warns`"): fairness.read_settings({}).inconclusive_warns,
    ("fairness", "`sensitive_as_input`"): sensitive_inputs.DEFAULT,
    ("drift", "`alpha`"): drift_gate.DEFAULT_ALPHA,
    ("drift", "`correction`"): drift_gate.DEFAULT_CORRECTION,
    ("drift", "`max_drifted_share`"): drift_gate.DEFAULT_SHARE,
    ("drift", "the classifier test's share of alpha"): multivariate.CLASSIFIER_ALPHA_SHARE,
    ("violations", "`max`"): violations.DEFAULT_MAX,
    ("optimality", "`max_gap`"): optimality.DEFAULT_MAX_GAP,
}


def readme_defaults() -> dict[tuple[str, str], str]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index(HEADER):].split("\n\n", 1)[0].splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    return {(gate.strip("`"), setting): default for gate, setting, default in rows}


def leading_value(cell: str) -> Any:
    """The value a default cell states before any explanation in brackets, as YAML reads it."""
    value = cell.split(" (", 1)[0].replace("`", "")
    return yaml.safe_load("{" + value + "}") if ": {" in value else yaml.safe_load(value)


def test_every_default_in_the_readme_table_is_the_codes() -> None:
    documented = readme_defaults()
    assert set(documented) == set(CODE), "a row without a constant, or a constant without a row"
    for key, used in CODE.items():
        assert leading_value(documented[key]) == used, f"README says {documented[key]!r} for {key}; the code {used!r}"


def test_the_defaults_are_the_ones_the_gates_use() -> None:
    chosen = fairness.read_settings({})
    assert (chosen.confidence, chosen.min_group_size, chosen.metrics) == (
        fairness.DEFAULT_CONFIDENCE, fairness.DEFAULT_MIN_GROUP_SIZE, fairness.DEFAULT_METRICS)


# --- the alpha beside each p-value ------------------------------------------------------------------


@pytest.mark.parametrize(("check", "shown"), [
    (Check("income", "warn", "", p_value=0.0032, threshold={"alpha": 0.05}, details={"p_adjusted": 0.0128}),
     "0.0032, corrected 0.0128 (alpha 0.05)"),
    (Check("multivariate", "pass", "", p_value=0.2, threshold={"alpha": 0.025}), "0.2 (alpha 0.025)"),
    (Check("delong", "pass", "", p_value=0.41, threshold={"margin": 0.01}), "0.41 (for information: no alpha)"),
    (Check("roc_auc", "pass", "", statistic=0.8), ""),
])
def test_a_p_value_is_shown_with_its_alpha(check: Check, shown: str) -> None:
    assert p_value_text(check.p_value, check.threshold, check.details) == shown


def test_the_reports_and_the_gate_reason_print_the_classifier_tests_halved_alpha() -> None:
    classifier = Check("multivariate", "fail", "a classifier tells current rows from reference rows",
                       statistic=0.7, p_value=0.001, threshold={"alpha": 0.025}, n=400)
    gate = GateResult("drift", "fail", "1 of 3 features changed", alpha=0.05, checks=[classifier])
    report = typed(gates_report("p", [gate.to_json()], {}))
    assert re.search(r"\| 0\.001 \(alpha 0\.025\) \|", markdown.render(report))
    assert '<td class="num">0.001 (alpha 0.025)</td>' in html.render(report)
    assert drift_gate._brief(classifier).endswith("(AUC 0.700, p=0.001, alpha 0.025)")
