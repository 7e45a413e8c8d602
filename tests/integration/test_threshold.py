"""`model.threshold` on real pipelines: the same model at 0.5 and at 0.3 decides differently, and
evaluate's predictions, its metrics, and what the performance and fairness gates judge follow; a
rule chooses on rows held out of the training split, and the saved model decides as evaluate did.

One repo (make_ml_repo's, plus three pipelines) is built once for the module; the tests only read it,
except the last, which trains a pipeline of its own in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fl
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import FixedThresholdClassifier, train_test_split

from modelops_ci.gates import fairness
from modelops_ci.gates.context import GateContext
from modelops_ci.ml import model_store
from modelops_ci.steps import gate
from modelops_ci.steps.context import StepContext, load_context
from tests.helpers.cli import run_cli
from tests.helpers.repos import make_ml_repo, write
from tests.helpers.specs import LOANS_SPEC

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

FEATURES = ["income", "debt", "age", "region"]
RULE = "{choose: max_false_approval_rate, at_most: 0.2}"


def variant(name: str, setting: str) -> str:
    """The loans pipeline (favourable: no default) with a threshold."""
    params = "    params: {C: 1.0, max_iter: 500}\n"
    text = LOANS_SPEC.replace("name: loans", f"name: {name}").replace(params, f"{params}    threshold: {setting}\n")
    return text.replace('target: {column: default, positive: "yes"}',
                        'target: {column: default, positive: "yes", favorable: "no"}')


def strict() -> str:
    """A model that cannot tell anyone apart, and a limit of no false approval at all."""
    text = variant("loans-strict", "{choose: max_false_approval_rate, at_most: 0.0}")
    return text.replace("sklearn.linear_model.LogisticRegression", "sklearn.dummy.DummyClassifier").replace(
        "    params: {C: 1.0, max_iter: 500}\n", "")


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"repo": tmp_path_factory.mktemp("threshold") / "ml"}


@pytest.fixture
def repo(_built: dict[str, Path]) -> Path:
    """Built lazily, under the test's isolated HOME and git identity."""
    root = _built["repo"]
    if not (root / "reports/loans-chosen/predictions.parquet").is_file():
        make_ml_repo(root)
        write(root, "pipelines/loans-cut.yaml", variant("loans-cut", "0.3"))
        write(root, "pipelines/loans-chosen.yaml", variant("loans-chosen", RULE))
        write(root, "pipelines/loans-strict.yaml", strict())
        assert run_cli("compile", cwd=root).exit_code == 0
        for pipeline in ("loans", "loans-cut", "loans-chosen"):
            for step in ("ingest", "split", "train", "evaluate"):
                result = run_cli("step", step, pipeline, cwd=root)
                assert result.exit_code == 0, (pipeline, step, result.stderr)
    return root


def predictions(repo: Path, pipeline: str) -> pd.DataFrame:
    return pd.read_parquet(repo / f"reports/{pipeline}/predictions.parquet")


def metrics(repo: Path, pipeline: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((repo / f"reports/{pipeline}/metrics.json").read_text())
    return loaded


def card(repo: Path, pipeline: str) -> dict[str, Any]:
    return model_store.read_card(repo / f"models/{pipeline}/model.json")


def gated(repo: Path, pipeline: str, gates: dict[str, Any]) -> StepContext:
    ctx = load_context(repo, pipeline)
    return StepContext(ctx.root, ctx.name, {**ctx.params, "gates": gates})


def test_a_set_threshold_changes_the_decisions_and_what_the_gates_judge(repo: Path) -> None:
    default, cut = predictions(repo, "loans"), predictions(repo, "loans-cut")
    assert np.allclose(default["y_score"], cut["y_score"])  # the same model...
    assert cut["y_pred"].tolist() == (cut["y_score"] >= 0.3).astype(int).tolist()  # ...deciding at 0.3
    assert (cut["y_pred"] != default["y_pred"]).sum() > 0

    assert "threshold" not in metrics(repo, "loans") and "threshold" not in card(repo, "loans")
    assert metrics(repo, "loans-cut")["threshold"] == 0.3
    assert metrics(repo, "loans-cut")["accuracy"] == pytest.approx(accuracy_score(cut["y_true"], cut["y_pred"]))
    assert card(repo, "loans-cut")["threshold"] == {"value": 0.3, "source": "spec"}

    settings = {"metrics": {"accuracy": {"min": 0.5}}}
    at_default = gate.evaluate(gated(repo, "loans", {"performance": settings}), "performance")
    at_cut = gate.evaluate(gated(repo, "loans-cut", {"performance": settings}), "performance")
    assert at_cut.checks[0].statistic == pytest.approx(accuracy_score(cut["y_true"], cut["y_pred"]))
    assert at_cut.checks[0].statistic != at_default.checks[0].statistic
    assert at_cut.reason.endswith("; decisions at threshold 0.3 (set in the spec)")
    assert at_cut.details["threshold"] == {"value": 0.3, "source": "spec"}
    assert "threshold" not in at_default.reason and "threshold" not in at_default.details


def test_the_fairness_gate_judges_the_decisions_at_the_threshold(repo: Path) -> None:
    cut = predictions(repo, "loans-cut")
    sample = fairness.sample_of(GateContext(load_context(repo, "loans-cut")))
    # favourable: no default, so the rates compared are those of predicted 0s
    assert sample.y_pred.tolist() == (1 - cut["y_pred"]).tolist()

    result = gate.evaluate(gated(repo, "loans-cut", {"fairness": {}}), "fairness")
    found = next(c for c in result.checks if c.name == "region: demographic_parity_ratio")
    expected = fl.demographic_parity_ratio(1 - cut["y_true"], 1 - cut["y_pred"], sensitive_features=cut["region"])
    assert found.statistic == pytest.approx(expected)


def test_a_rule_chooses_on_rows_held_out_of_the_training_split(repo: Path) -> None:
    record = card(repo, "loans-chosen")["threshold"]
    model, _ = model_store.load(repo / "models/loans-chosen/model.skops", repo / "models/loans-chosen/model.json")
    train = pd.read_parquet(repo / "data/loans-chosen/train.parquet")
    y = (train["default"] == "yes").astype(int)
    X_fit, X_validation, y_fit, y_validation = train_test_split(
        train[FEATURES], y, test_size=0.2, stratify=y, random_state=7)

    # the model was fitted on the other training rows only...
    assert isinstance(model, FixedThresholdClassifier) and model.threshold == record["value"]
    refitted = clone(model.estimator).fit(X_fit, y_fit)
    assert np.allclose(refitted.predict_proba(X_validation), model.estimator.predict_proba(X_validation))
    # ...and the threshold is the lowest-false-approval one of the validation rows (approval = a predicted 0)
    scores = model.predict_proba(X_validation)[:, 1]
    approved, good = scores < record["value"], y_validation.to_numpy() == 0
    assert record["validation"]["rows"] == len(X_validation)
    assert record["validation"]["false_approval_rate"] == (approved & ~good).sum() / (~good).sum() <= 0.2
    looser = scores < record["value"] + 0.001
    assert (looser & ~good).sum() / (~good).sum() > 0.2 or (looser & good).sum() == (approved & good).sum()

    chosen = predictions(repo, "loans-chosen")
    test = pd.read_parquet(repo / "data/loans-chosen/test.parquet")
    assert chosen["y_pred"].tolist() == model.predict(test[FEATURES]).tolist()  # as served, as evaluated
    assert metrics(repo, "loans-chosen")["threshold"] == record["value"]
    result = gate.evaluate(gated(repo, "loans-chosen", {"performance": {"metrics": {"accuracy": {"min": 0.5}}}}),
                           "performance")
    assert (f"decisions at threshold {record['value']:g}, chosen on {len(X_validation)} validation rows (20% of "
            "the training split, seed 7): the most approvals of favourable cases with a false-approval rate at "
            "most 0.2") in result.reason


def test_a_limit_no_threshold_meets_stops_training_at_its_line(repo: Path) -> None:
    for step in ("ingest", "split"):
        assert run_cli("step", step, "loans-strict", cwd=repo).exit_code == 0
    result = run_cli("step", "train", "loans-strict", cwd=repo)
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(strict().splitlines(), 1) if "threshold:" in text)
    assert f"pipelines/loans-strict.yaml:{line}: spec.model.threshold.at_most: " in result.stderr
    assert "keeps the false-approval rate at most 0 on the validation rows" in result.stderr
    assert not (repo / "models/loans-strict/model.skops").exists()
