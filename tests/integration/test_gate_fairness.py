"""The fairness gate: its numbers are fairlearn's, its CIs behave, bad input is an `error` with a reason
(never an exception, never a silent 0/0), and it runs on a real pipeline's predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fairlearn import metrics as fl

from modelops_ci.steps import gate
from modelops_ci.steps.context import StepContext, load_context
from tests.helpers.cli import run_cli
from tests.helpers.gates import check, json_safe
from tests.helpers.repos import make_ml_repo

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

# --- a real pipeline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fairness") / "ml"


@pytest.fixture
def trained(_trained_template: Path, tmp_path: Path) -> Path:
    """The `ml_repo` repo with the loans pipeline run up to evaluate: trained once per module, copied."""
    if not _trained_template.exists():
        make_ml_repo(_trained_template)  # here, under this test's isolated HOME and git identity
        for step in ("ingest", "split", "train", "evaluate"):
            result = run_cli("step", step, "loans", cwd=_trained_template)
            assert result.exit_code == 0, result.stderr
    return Path(shutil.copytree(_trained_template, tmp_path / "ml", symlinks=True))


def with_settings(repo: Path, settings: dict[str, Any]) -> StepContext:
    ctx = load_context(repo, "loans")
    return StepContext(ctx.root, ctx.name, {**ctx.params, "gates": {"fairness": settings}})


def test_on_the_loans_pipeline_with_the_defaults(trained: Path) -> None:
    predictions = pd.read_parquet(trained / "reports/loans/predictions.parquet")

    result = gate.evaluate(with_settings(trained, {}), "fairness")

    assert result.n == len(predictions)
    assert [v["name"] for v in result.details["views"]] == ["region", "age_band", "region & age_band"]
    assert result.groups is not None
    for feature in ("region", "age_band"):
        counts = predictions[feature].value_counts()
        assert {f"{feature}={k}": int(v) for k, v in counts.items()} == {
            k: v for k, v in result.groups.items() if k.startswith(f"{feature}=") and "&" not in k}
        found = check(result, f"{feature}: demographic_parity_ratio")
        expected = fl.demographic_parity_ratio(predictions["y_true"], predictions["y_pred"],
                                               sensitive_features=predictions[feature])
        assert found.statistic == pytest.approx(expected)
    # 120 test rows: the 6 region x age band groups are all under 30 rows; not required, so a warning
    assert check(result, "region & age_band: groups").status == "warn"
    assert result.status in ("pass", "warn", "fail")
    assert result.reason
    json_safe(result)


def test_on_the_loans_pipeline_with_policy_settings_and_through_the_gate_step(trained: Path) -> None:
    strict = gate.evaluate(with_settings(trained, {"intersectional": True, "advisory": True}), "fairness")
    assert strict.status == "error" and strict.advisory and not strict.blocks
    assert "region & age_band: only" in strict.reason

    small = gate.evaluate(with_settings(trained, {"min_group_size": 5, "confidence": 0.9, "metrics": {
        "equal_opportunity_difference": {"max": 1.0}}}), "fairness")
    assert small.confidence == 0.9
    assert {c.name for c in small.checks if c.status == "pass"} >= {
        "region: equal_opportunity_difference", "age_band: equal_opportunity_difference"}

    step = run_cli("step", "gate-fairness", "loans", cwd=trained)
    assert step.exit_code == 0, step.stderr
    report = json.loads((trained / "reports/loans/gates/fairness.json").read_text())
    assert report["gate"] == "fairness" and report["status"] in ("pass", "warn", "fail")
    assert report["details"]["views"][0]["name"] == "region"


def test_favorable_naming_the_class_the_model_learnt_as_positive_flips_nothing(trained: Path) -> None:
    """No `positive` in the spec: train takes the last class ('yes') and its card says so. A
    `favorable: yes` is that same class, so the rates are of predicted 'yes', not of its complement."""
    ctx = with_settings(trained, {})
    target = {k: v for k, v in ctx.params["data"]["target"].items() if k != "positive"}
    data = {**ctx.params["data"], "target": {**target, "favorable": "yes"}}
    result = gate.evaluate(StepContext(ctx.root, ctx.name, {**ctx.params, "data": data}), "fairness")

    predictions = pd.read_parquet(trained / "reports/loans/predictions.parquet")
    assert result.details["positive"] == "default = yes"
    found = check(result, "region: demographic_parity_ratio")
    expected = fl.demographic_parity_ratio(predictions["y_true"], predictions["y_pred"],
                                           sensitive_features=predictions["region"])
    assert found.statistic == pytest.approx(expected)
