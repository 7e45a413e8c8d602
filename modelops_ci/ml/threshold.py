"""A classifier's decision threshold: a row is predicted positive when its positive-class probability
is at least the threshold. 0.5 unless the spec sets `model.threshold`: a number, or a rule that
chooses it on a validation split held out of the training split (never the test split the gates
judge on).

In a lender's words, an *approval* is the favourable class predicted (`data.target.favorable`, by
default the positive class): a *false approval* is an approval of an unfavourable case (a loan to
someone who defaults), a *false denial* a denial of a favourable one. The rules:

- `{choose: max_false_approval_rate, at_most: r}`: the most approvals of favourable cases while at
  most a share `r` of the unfavourable ones is approved; among those, the fewest false approvals;
- `{choose: cost, false_approval: a, false_denial: d}`: the lowest expected cost a x false approvals
  + d x false denials.

scikit-learn's TunedThresholdClassifierCV scores every candidate of `GRID` on the validation rows
(`cv="prefit"`: the model was fitted on the other training rows). Of equally good candidates, the
middle of the first run is kept: they all decide the validation rows alike, and the middle sits
furthest from the validation scores that bound the run. The model is saved inside a
FixedThresholdClassifier, so its own `predict` (what MLflow serves) applies the same threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT = 0.5
GRID_STEPS = 1000  # candidates 0.001, 0.002, ..., 0.999
DEFAULT_VALIDATION_SIZE = 0.2
FALSE_APPROVALS = "max_false_approval_rate"
COST = "cost"


class NoThreshold(ValueError):
    """No candidate meets the rule on the validation rows."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key  # the rule's key to point at


def grid() -> np.ndarray:
    import numpy as np

    candidates: np.ndarray = np.arange(1, GRID_STEPS) / GRID_STEPS
    return candidates


def decide(scores: Any, threshold: float) -> np.ndarray:
    """1 where the positive-class probability is at least `threshold` (the one decision rule)."""
    import numpy as np

    decided: np.ndarray = (np.asarray(scores, dtype=float) >= threshold).astype(int)
    return decided


def of_card(facts: dict[str, Any]) -> float:
    """The threshold a model card records, or the default for a card that records none."""
    record = facts.get("threshold")
    return float(record["value"]) if isinstance(record, dict) else DEFAULT


def fixed(value: float) -> dict[str, Any]:
    """The card's record of a threshold the spec sets."""
    return {"value": float(value), "source": "spec"}


@dataclass(frozen=True)
class Outcomes:
    """Decisions on labelled rows, counted as approvals and denials."""

    favourable_rows: int
    unfavourable_rows: int
    true_approvals: int
    false_approvals: int

    @property
    def false_denials(self) -> int:
        return self.favourable_rows - self.true_approvals

    @property
    def true_approval_rate(self) -> float:
        return self.true_approvals / self.favourable_rows if self.favourable_rows else 0.0

    @property
    def false_approval_rate(self) -> float:
        return self.false_approvals / self.unfavourable_rows if self.unfavourable_rows else 0.0

    def cost(self, false_approval: float, false_denial: float) -> float:
        """The expected cost of a row."""
        rows = self.favourable_rows + self.unfavourable_rows
        return (false_approval * self.false_approvals + false_denial * self.false_denials) / rows


def outcomes(y_true: Any, y_pred: Any, favourable: int) -> Outcomes:
    """`y_true` and `y_pred` as 0/1 labels; `favourable`: the label that is an approval."""
    import numpy as np

    good = np.asarray(y_true) == favourable
    approved = np.asarray(y_pred) == favourable
    return Outcomes(int(good.sum()), int((~good).sum()), int((good & approved).sum()),
                    int((~good & approved).sum()))


def constrained_score(y_true: Any, y_pred: Any, *, favourable: int, at_most: float) -> float:
    """One number that orders candidates as the false-approval rule does: any candidate within the
    limit above any beyond it; then more true approvals; then fewer false approvals. (The penalty
    stays below the step between two true-approval rates, 1 / favourable rows.)"""
    seen = outcomes(y_true, y_pred, favourable)
    if seen.false_approval_rate > at_most:
        return -1.0 - seen.false_approval_rate
    return seen.true_approval_rate - seen.false_approval_rate / (seen.favourable_rows + 1)


def expected_cost(y_true: Any, y_pred: Any, *, favourable: int, false_approval: float,
                  false_denial: float) -> float:
    return outcomes(y_true, y_pred, favourable).cost(false_approval, false_denial)


def scorer(rule: dict[str, Any], favourable: int) -> Any:
    """The rule as a scikit-learn scorer (higher is better once its sign is applied)."""
    from sklearn.metrics import make_scorer

    if rule["choose"] == FALSE_APPROVALS:
        return make_scorer(constrained_score, favourable=favourable, at_most=float(rule["at_most"]))
    return make_scorer(expected_cost, greater_is_better=False, favourable=favourable,
                       false_approval=float(rule["false_approval"]), false_denial=float(rule["false_denial"]))


def middle_of_first_best(scores: np.ndarray) -> int:
    """The index in the middle of the first run of the highest score (lower middle of an even run)."""
    import numpy as np

    best = scores.max()
    first = int(np.argmax(scores))  # TunedThresholdClassifierCV's own choice
    last = first
    while last + 1 < len(scores) and scores[last + 1] == best:
        last += 1
    return (first + last) // 2


def choose(model: Any, X_validation: Any, y_validation: Any, rule: dict[str, Any],
           favourable: int) -> tuple[float, Outcomes]:
    """The threshold `rule` picks for the fitted `model` on validation rows it did not learn from,
    and the decisions it makes there; `NoThreshold` when none meets the rule."""
    from sklearn.model_selection import TunedThresholdClassifierCV

    tuned = TunedThresholdClassifierCV(model, scoring=scorer(rule, favourable), response_method="predict_proba",
                                       thresholds=grid(), cv="prefit", refit=False, store_cv_results=True)
    tuned.fit(X_validation, y_validation)
    best = middle_of_first_best(tuned.cv_results_["scores"])
    value = float(tuned.cv_results_["thresholds"][best])
    scores = model.predict_proba(X_validation)[:, 1]
    seen = outcomes(y_validation, decide(scores, value), favourable)
    if rule["choose"] == FALSE_APPROVALS:
        _check_feasible(seen, float(rule["at_most"]))
    return value, seen


def _check_feasible(seen: Outcomes, at_most: float) -> None:
    if seen.false_approval_rate > at_most:
        raise NoThreshold(f"no threshold keeps the false-approval rate at most {at_most:g} on the validation "
                          f"rows (the lowest is {seen.false_approval_rate:.3g})", "at_most")
    if seen.true_approvals == 0:
        raise NoThreshold(f"only a threshold that approves no favourable case keeps the false-approval rate at "
                          f"most {at_most:g} on the validation rows", "at_most")


def chosen(value: float, rule: dict[str, Any], seen: Outcomes, share: float, seed: int) -> dict[str, Any]:
    """The card's record of a threshold a rule chose on the validation rows."""
    validation: dict[str, Any] = {"rows": seen.favourable_rows + seen.unfavourable_rows, "share": share,
                                  "seed": seed, "false_approval_rate": seen.false_approval_rate,
                                  "true_approval_rate": seen.true_approval_rate}
    if rule["choose"] == COST:
        validation["expected_cost"] = seen.cost(float(rule["false_approval"]), float(rule["false_denial"]))
    return {"value": value, "source": "validation", "rule": dict(rule), "validation": validation}


def describe(record: dict[str, Any] | None) -> str:
    """The threshold and how it was chosen, in words ("" for the default)."""
    if not record:
        return ""
    value = f"decisions at threshold {record['value']:g}"
    if record.get("source") != "validation":
        return f"{value} (set in the spec)"
    rule, seen = record["rule"], record["validation"]
    where = (f"chosen on {seen['rows']} validation rows ({seen['share']:.0%} of the training split, "
             f"seed {seen['seed']})")
    if rule["choose"] == COST:
        goal = (f"the lowest expected cost with a false approval costing {rule['false_approval']:g} and a "
                f"false denial {rule['false_denial']:g} (there {seen['expected_cost']:.3g} a row)")
    else:
        goal = (f"the most approvals of favourable cases with a false-approval rate at most "
                f"{rule['at_most']:g} (there {seen['false_approval_rate']:.3g})")
    return f"{value}, {where}: {goal}"
