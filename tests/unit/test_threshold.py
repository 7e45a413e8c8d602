"""`model.threshold`: the choice a rule makes on validation rows, against a brute-force search over
every candidate written from the rules' plain definitions (integer counts, no scorer); the decision
rule the gates then judge; the spec's errors at their line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier

from modelops_ci.gates import compare, performance
from modelops_ci.gates.result import CannotEvaluate
from modelops_ci.ml import threshold
from tests.helpers.cli import run_cli
from tests.helpers.repos import write
from tests.helpers.specs import VALID

RULES = [
    {"choose": "max_false_approval_rate", "at_most": 0.05},
    {"choose": "max_false_approval_rate", "at_most": 0.2},
    {"choose": "cost", "false_approval": 5, "false_denial": 1},
    {"choose": "cost", "false_approval": 1, "false_denial": 3},
]


def rows(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + rng.normal(scale=1.0, size=n) > 0.3).astype(int)
    return X, y


def counts(y: np.ndarray, decided: np.ndarray, favourable: int) -> tuple[int, int, int, int]:
    """(true approvals, false approvals, favourable rows, unfavourable rows)."""
    good, approved = y == favourable, decided == favourable
    return int((good & approved).sum()), int((~good & approved).sum()), int(good.sum()), int((~good).sum())


def brute_force(scores: np.ndarray, y: np.ndarray, rule: dict[str, Any], favourable: int) -> float | None:
    """The rule's threshold by trying every candidate; None when no candidate meets it."""
    candidates = [k / 1000 for k in range(1, 1000)]
    keys: list[tuple[float, ...] | None] = []
    for t in candidates:
        true_approvals, false_approvals, good, bad = counts(y, (scores >= t).astype(int), favourable)
        if rule["choose"] == "cost":
            false_denials = good - true_approvals
            keys.append((-(rule["false_approval"] * false_approvals + rule["false_denial"] * false_denials),))
        elif false_approvals <= rule["at_most"] * bad and true_approvals > 0:
            keys.append((true_approvals, -false_approvals))  # most true approvals, then fewest false ones
        else:
            keys.append(None)
    feasible = [k for k in keys if k is not None]
    if not feasible:
        return None
    best = max(feasible)
    first = keys.index(best)
    last = first
    while last + 1 < len(keys) and keys[last + 1] == best:
        last += 1
    return candidates[(first + last) // 2]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("favourable", [0, 1])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: "-".join(str(v) for v in r.values()))
@pytest.mark.parametrize("model", [LogisticRegression(), DecisionTreeClassifier(max_depth=3, random_state=0)],
                         ids=["distinct scores", "tied scores"])
def test_the_choice_is_the_brute_force_one(seed: int, favourable: int, rule: dict[str, Any], model: Any) -> None:
    X, y = rows(seed)
    fitted = model.fit(X[:300], y[:300])
    X_validation, y_validation = X[300:], y[300:]
    scores = fitted.predict_proba(X_validation)[:, 1]
    expected = brute_force(scores, y_validation, rule, favourable)

    if expected is None:
        with pytest.raises(threshold.NoThreshold):
            threshold.choose(fitted, X_validation, y_validation, rule, favourable)
        return
    value, seen = threshold.choose(fitted, X_validation, y_validation, rule, favourable)

    assert value == expected
    true_approvals, false_approvals, good, bad = counts(y_validation, (scores >= value).astype(int), favourable)
    assert (seen.true_approvals, seen.false_approvals, seen.favourable_rows, seen.unfavourable_rows) == (
        true_approvals, false_approvals, good, bad)
    if rule["choose"] == "max_false_approval_rate":
        assert seen.false_approval_rate <= rule["at_most"]


def test_the_choice_is_deterministic_and_leaves_the_model_unchanged() -> None:
    X, y = rows(5)
    fitted = LogisticRegression().fit(X[:300], y[:300])
    before = fitted.coef_.copy()
    choices = {threshold.choose(fitted, X[300:], y[300:], RULES[0], 1)[0] for _ in range(3)}
    assert len(choices) == 1
    assert np.array_equal(fitted.coef_, before)


def test_a_limit_no_threshold_meets_names_its_key() -> None:
    """Labels that are coin flips: no threshold approves anyone good without approving someone bad."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(300, 2)), rng.integers(0, 2, 300)
    fitted = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X[:200], y[:200])
    with pytest.raises(threshold.NoThreshold, match="at most 0 on the validation rows") as caught:
        threshold.choose(fitted, X[200:], y[200:], {"choose": "max_false_approval_rate", "at_most": 0.0}, 1)
    assert caught.value.key == "at_most"


def test_a_tie_goes_to_the_middle_of_the_first_best_run() -> None:
    assert threshold.middle_of_first_best(np.array([0.1, 0.5, 0.5, 0.5, 0.2, 0.5])) == 2
    assert threshold.middle_of_first_best(np.array([0.5, 0.5, 0.1])) == 0
    assert threshold.middle_of_first_best(np.array([0.1, 0.2])) == 1


def test_a_row_at_the_threshold_is_positive_and_a_card_without_one_decides_at_half() -> None:
    assert threshold.decide([0.29, 0.3, 0.31], 0.3).tolist() == [0, 1, 1]
    assert threshold.of_card({"positive": "yes"}) == 0.5
    assert threshold.of_card({"threshold": threshold.fixed(0.3)}) == 0.3
    assert threshold.describe(None) == ""
    assert threshold.describe(threshold.fixed(0.3)) == "decisions at threshold 0.3 (set in the spec)"


def test_the_description_says_how_a_rule_chose() -> None:
    seen = threshold.Outcomes(favourable_rows=40, unfavourable_rows=60, true_approvals=30, false_approvals=3)
    cost = {"choose": "cost", "false_approval": 5, "false_denial": 1}
    record = threshold.chosen(0.42, cost, seen, 0.2, 7)
    assert record["validation"]["expected_cost"] == pytest.approx((5 * 3 + 1 * 10) / 100)
    assert threshold.describe(record) == (
        "decisions at threshold 0.42, chosen on 100 validation rows (20% of the training split, seed 7): the "
        "lowest expected cost with a false approval costing 5 and a false denial 1 (there 0.25 a row)")
    limit = threshold.chosen(0.42, RULES[0], seen, 0.2, 7)
    assert threshold.describe(limit).endswith("with a false-approval rate at most 0.05 (there 0.05)")


# --- what the gates judge -------------------------------------------------------------------------


def test_performance_judges_the_decisions_given() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    decided = threshold.decide(scores, 0.3)

    at_default = performance.classification_sample(y, scores)
    at_threshold = performance.classification_sample(y, scores, decided)

    assert performance.point(at_default, "accuracy") == pytest.approx(accuracy_score(y, scores >= 0.5))
    assert performance.point(at_threshold, "accuracy") == pytest.approx(accuracy_score(y, decided))
    assert performance.point(at_threshold, "accuracy") != performance.point(at_default, "accuracy")
    with pytest.raises(CannotEvaluate, match="must be 0 or 1"):
        performance.classification_sample(y, scores, scores)


def test_compare_judges_each_model_at_its_own_threshold() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    a = np.clip(y * 0.3 + rng.uniform(0, 0.7, 300), 0, 1)
    b = np.clip(y * 0.2 + rng.uniform(0, 0.8, 300), 0, 1)

    p = compare.pair("classification", y, a, b, decisions=(threshold.decide(a, 0.3), threshold.decide(b, 0.6)))

    assert performance.point(p.challenger, "accuracy") == pytest.approx(accuracy_score(y, a >= 0.3))
    assert performance.point(p.champion, "accuracy") == pytest.approx(accuracy_score(y, b >= 0.6))
    assert performance.point(p.challenger, "roc_auc") == performance.point(
        compare.pair("classification", y, a, b).challenger, "roc_auc")  # scores are untouched


# --- the spec ---------------------------------------------------------------------------------------


def spec_with(repo: Path, setting: str, task: str = "classification") -> None:
    estimator = "    estimator: sklearn.linear_model.LogisticRegression\n"
    text = VALID.replace(estimator, f"{estimator}    threshold: {setting}\n")
    write(repo, "pipelines/demo.yaml", text.replace("task: classification", f"task: {task}"))
    write(repo, "data/train.csv", "x,y\n1,0\n2,1\n")


@pytest.mark.parametrize("setting", ["0.3", "{choose: max_false_approval_rate, at_most: 0.05}",
                                     "{choose: cost, false_approval: 5, false_denial: 1, validation_size: 0.3}"])
def test_a_threshold_or_a_rule_is_valid(tmp_path: Path, setting: str) -> None:
    spec_with(tmp_path, setting)
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("setting", "error"), [
    ("1", "pipelines/demo.yaml:17:16: spec.model.threshold: 1 is greater than or equal to the maximum of 1"),
    ("high", "pipelines/demo.yaml:17:16: spec.model.threshold: expected number or mapping, got string 'high'"),
    ("{choose: max_false_approval_rate}",
     "pipelines/demo.yaml:17:16: spec.model.threshold: missing required key 'at_most'"),
    ("{choose: costs, false_approval: 5, false_denial: 1}",
     "pipelines/demo.yaml:17:25: spec.model.threshold.choose: 'costs' is not allowed (did you mean 'cost'?)"),
    ("{choose: cost, false_approval: 5, false_denial: 1, at_most: 0.1}",
     "pipelines/demo.yaml:17:67: spec.model.threshold.at_most: 'at_most' is not allowed here"),
    ("{choose: max_false_approval_rate, at_most: 0.05, validation_size: 1}",
     "spec.model.threshold.validation_size: 1 is greater than or equal to the maximum of 1"),
])
def test_a_bad_threshold_is_refused_at_its_line(tmp_path: Path, setting: str, error: str) -> None:
    spec_with(tmp_path, setting)
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 2
    assert error in result.stderr


def test_a_threshold_on_a_regression_is_refused_at_its_line(tmp_path: Path) -> None:
    spec_with(tmp_path, "0.3", task="regression")
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 2
    assert ("pipelines/demo.yaml:17:5: spec.model.threshold: 'threshold' is not allowed here (a decision "
            "threshold is for a classification task: remove it)") in result.stderr
