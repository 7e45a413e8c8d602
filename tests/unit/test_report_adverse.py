"""The fairness report's adverse-outcome figures (a denial when the favourable outcome is an
approval): the model's disparity beside the one already in the labels, in words, in markdown and in
HTML, from a real fairness gate's result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelops_ci.gates import fairness
from modelops_ci.gates.result import GateResult
from modelops_ci.report import html, markdown
from modelops_ci.report.words import adverse_sentences
from modelops_ci.steps.gate import gates_report
from tests.helpers.reports import typed


def _loans(model_gap: float, data_gap: float = 0.05, n: int = 3000, seed: int = 5) -> GateResult:
    """Approvals (1) for two marital groups: the labels deny 'single' `data_gap` more often than
    'married', the model `model_gap` more often."""
    rng = np.random.default_rng(seed)
    marital = rng.choice(["married", "single"], n)
    single = marital == "single"
    approved = (rng.random(n) < np.where(single, 0.7 - data_gap, 0.7)).astype(int)
    predicted = (rng.random(n) < np.where(single, 0.7 - model_gap, 0.7)).astype(int)
    sample = fairness.make_sample(approved, predicted, {"Marital": marital}, outcome="Status = good",
                                  adverse="Status = bad")
    return fairness.assess(sample, {"metrics": {"demographic_parity_ratio": {"min": 0.5}}}, resamples=50)


def _view(gate: GateResult) -> dict[str, Any]:
    [view] = gate.details["adverse"]["views"]
    return dict(view)


@pytest.mark.parametrize(("model_gap", "verb"), [(0.2, "widens"), (0.0, "narrows")])
def test_the_sentence_says_how_often_and_whether_the_model_widens_the_gap_in_the_data(
        model_gap: float, verb: str) -> None:
    gate = _loans(model_gap)
    view = _view(gate)
    [sentence] = adverse_sentences(gate)
    model, labels = view["model"], view["labels"]
    worst = model["highest_adverse_group"].split("=")[1]
    assert sentence.startswith(f"Marital: the model gives “Status = bad” to “{worst}” "
                               f"{model['adverse_rate_ratio']:.2f} times as often as to")
    assert (f"{model['adverse_rate_difference'] * 100:.1f} percentage points apart, against "
            f"{labels['adverse_rate_difference'] * 100:.1f} in the data itself: the model {verb} the gap") in sentence


def test_markdown_and_html_show_the_model_beside_the_data_with_odds_ratios() -> None:
    gate = _loans(0.2)
    view = _view(gate)
    report = typed(gates_report("loans", [gate.to_json()], {}))
    page, text = html.render(report), markdown.render(report)
    odds = view["model"]["odds_ratio"]
    low, high = view["model"]["odds_ratio_ci"]
    assert "**Adverse outcome, model against data:**" in text
    assert "| Disparity | Model | Data (labels) |" in text
    assert f"| adverse rate ratio (highest / lowest) | {view['model']['adverse_rate_ratio']:.3g} | " \
           f"{view['labels']['adverse_rate_ratio']:.3g} |" in text
    assert f"| favourable rate ratio (lowest / highest) | {view['model']['favourable_rate_ratio']:.3g} |" in text
    assert f"{odds:.3g} ({low:.3g} to {high:.3g}), single" in text
    assert "Woolf CI" in text and "odds ratios against married" in text
    assert "| married | " in text and "| reference | reference |" in text
    assert "Adverse outcome: the model against the data" in page
    assert f"{odds:.3g} ({low:.3g} to {high:.3g}), single" in page
    assert "<th>Rate: data</th>" in page
