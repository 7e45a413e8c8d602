"""Champion/challenger: is this commit's model (the challenger) not worse than the model at the
policy's reference stage (the champion), on the same, current hold-out?

The champion is found in the registry (git tags, GTO grammar), its model and card are read from
DVC at the champion's commit (sha256-checked like any model), and it predicts on the current
test split exactly as `evaluate` does. Both models are then compared row by row:

- a paired bootstrap of the metric difference (challenger - champion): each resample weighs the
  same rows for both models, so what the two share (hard rows, easy rows) cancels out;
- DeLong's test when the metric is ROC AUC, McNemar's when it is accuracy.

Non-inferiority: the gate passes when the difference's CI clears `-margin` (its lower bound for a
metric where higher is better, its upper bound below `+margin` for a loss). A margin of 0 asks
for a challenger that is shown better. McNemar tests equality, not non-inferiority: a challenger
significantly less accurate but within the margin is a `warn`, never a pass hidden in the noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import bootstrap, performance, stats
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status, worst

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext
    from modelops_ci.registry.tags import Champion

GATE = "compare"
RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_STAGE = "production"
DEFAULT_MARGIN = 0.0
# Above bootstrap.EXACT_ROWS rows, rows are grouped by both models' keys at once; fewer score bins
# than the one-model bootstrap keep the joint cells (bins x bins) bounded.
PAIRED_BINS = 256
LOSSES = {"log_loss", "brier", "rmse", "mae", "smape", "mase"}


@dataclass(frozen=True)
class Pair:
    """Both models' predictions on the same rows, as moments over shared bootstrap cells."""

    challenger: performance.Sample
    champion: performance.Sample
    cells: tuple[bootstrap.Cells, bootstrap.Cells]  # same counts; challenger's and champion's moments
    y: np.ndarray
    scores: tuple[np.ndarray, np.ndarray]  # scores (classification) or predictions


def pair(task: str, y_true: Any, challenger: Any, champion: Any,
         mase_scales: tuple[float | None, float | None] = (None, None),
         decisions: tuple[Any, Any] = (None, None)) -> Pair:
    """Pair two models' predictions (scores for a classifier) of the labels `y_true`; `decisions`:
    a classifier's predicted classes, each at its own model's threshold (default: the scores at 0.5)."""
    y = np.asarray(y_true, dtype=float).reshape(-1)
    a = np.asarray(challenger, dtype=float).reshape(-1)
    b = np.asarray(champion, dtype=float).reshape(-1)
    if not len(y) == len(a) == len(b):
        raise CannotEvaluate(f"the challenger has {len(a)} predictions and the champion {len(b)} "
                             f"for {len(y)} hold-out rows: both must predict every row")
    if task == "classification":
        samples = (_named(performance.classification_sample, y, a, "challenger", decisions[0]),
                   _named(performance.classification_sample, y, b, "champion", decisions[1]))
        decided = [sample.rows.means[:, sample.columns["p"]] for sample in samples]
        keys = None if len(y) <= bootstrap.EXACT_ROWS else np.column_stack(
            [y, *decided, bootstrap.quantile_bins(a, PAIRED_BINS), bootstrap.quantile_bins(b, PAIRED_BINS)])
    else:
        samples = (_named(performance.regression_sample, y, a, "challenger", mase_scales[0], task),
                   _named(performance.regression_sample, y, b, "champion", mase_scales[1], task))
        keys = None if len(y) <= bootstrap.EXACT_ROWS else np.column_stack(
            [bootstrap.quantile_bins(y, 32), bootstrap.quantile_bins(a - y, PAIRED_BINS),
             bootstrap.quantile_bins(b - y, PAIRED_BINS)])
    return Pair(samples[0], samples[1], _joint_cells(samples[0], samples[1], keys), y, (a, b))


def _named(build: Callable[..., performance.Sample], y: np.ndarray, predicted: np.ndarray,
           who: str, *args: Any) -> performance.Sample:
    try:
        return build(y, predicted, *args)
    except CannotEvaluate as exc:
        raise exc.within(f"the {who}'s predictions") from None


def _joint_cells(a: performance.Sample, b: performance.Sample,
                 keys: np.ndarray | None) -> tuple[bootstrap.Cells, bootstrap.Cells]:
    """One set of cells for both models (so one resample weighs both alike), split by model."""
    width, orders = a.rows.means.shape[1], a.rows.order.shape[1]
    joint = bootstrap.make_cells(np.hstack([a.rows.means, b.rows.means]), keys,
                                 np.hstack([a.rows.order, b.rows.order]))
    return (bootstrap.Cells(joint.counts, joint.means[:, :width], joint.order[:, :orders]),
            bootstrap.Cells(joint.counts, joint.means[:, width:], joint.order[:, orders:]))


def paired_differences(p: Pair, name: str, resamples: int, seed: int) -> np.ndarray:
    """The metric difference (challenger - champion) over `resamples` shared bootstrap resamples."""
    first, second = performance.metric(p.challenger, name), performance.metric(p.champion, name)
    cells_a, cells_b = p.cells
    return np.concatenate([first(w, cells_a) - second(w, cells_b)
                           for w in bootstrap.weights(cells_a, resamples, seed)])


def non_inferior(difference_ci: tuple[float, float], margin: float, higher_is_better: bool) -> bool:
    """Whether the challenger is surely not worse than the champion by more than `margin`."""
    low, high = difference_ci
    return low > -margin if higher_is_better else high < margin


def bootstrap_check(p: Pair, name: str, margin: float, confidence: float, resamples: int,
                    seed: int) -> Check:
    label = performance.LABELS.get(name, name)
    challenger, champion = performance.point(p.challenger, name), performance.point(p.champion, name)
    if not (np.isfinite(challenger) and np.isfinite(champion)):
        return Check("paired_bootstrap", "error", f"{label} is undefined on this hold-out", n=len(p.y))
    ci = bootstrap.percentile_ci(paired_differences(p, name, resamples, seed), confidence)
    return _margin_check("paired_bootstrap", "paired bootstrap", name, challenger, champion, ci,
                         margin, confidence, {"resamples": resamples, "seed": seed}, len(p.y))


def delong_check(p: Pair, margin: float, confidence: float) -> Check:
    """The ROC AUC difference's DeLong CI against the margin, and the DeLong test of equality."""
    result = stats.delong(p.y, *p.scores)
    check = _margin_check("delong", "DeLong", "roc_auc", result.auc_a, result.auc_b,
                          result.ci(confidence), margin, confidence,
                          {"se": result.se, "z": result.z}, len(p.y))
    check.p_value = result.p_value
    check.reason += f"; equal AUCs: z = {result.z:.3g}, p = {result.p_value:.3g} (for information: decided on the CI)"
    return check


def mcnemar_check(p: Pair, confidence: float) -> Check:
    """McNemar's test of equal accuracy: a warning when the challenger is significantly worse."""
    column = p.challenger.columns["correct"]
    result = stats.mcnemar(p.challenger.rows.means[:, column], p.champion.rows.means[:, column])
    alpha = 1 - confidence
    worse = result.p_value < alpha and result.c > result.b
    better = result.p_value < alpha and result.b > result.c
    verdict = ("the challenger is significantly less accurate" if worse else
               "the challenger is significantly more accurate" if better else "no significant difference")
    test = "exact binomial" if result.exact else "chi-squared with continuity correction"
    reason = (f"McNemar ({test}): right where the other is wrong: challenger {result.b} rows, "
              f"champion {result.c}; p = {result.p_value:.3g}, alpha {alpha:.3g}: {verdict}")
    status: Status = "warn" if worse else "pass"
    return Check("mcnemar", status, reason, statistic=result.statistic, p_value=result.p_value,
                 threshold={"alpha": alpha}, n=len(p.y),
                 details={"challenger_only": result.b, "champion_only": result.c, "exact": result.exact})


def _margin_check(check: str, method: str, name: str, challenger: float, champion: float,
                  ci: tuple[float, float], margin: float, confidence: float, extra: dict[str, Any],
                  n: int) -> Check:
    label = performance.LABELS.get(name, name)
    higher = name not in LOSSES
    ok = non_inferior(ci, margin, higher)
    bound = f"> {-margin:g}" if higher else f"< {margin:g}"
    verdict = (f"not worse by more than {margin:g}" if ok else
               f"may be worse by more than {margin:g} (the CI's {'lower' if higher else 'upper'} "
               f"bound is not {bound})")
    reason = (f"{label}: challenger {challenger:.4g}, champion {champion:.4g}, difference "
              f"{challenger - champion:+.3g} ({confidence:.0%} {method} CI {ci[0]:+.3g} to {ci[1]:+.3g}): "
              f"{verdict}")
    status: Status = "pass" if ok else "fail"
    return Check(check, status, reason, statistic=challenger - champion, ci=ci,
                 threshold={"margin": margin}, n=n,
                 details={"metric": name, "challenger": challenger, "champion": champion, **extra})


def assess(p: Pair, settings: dict[str, Any], seed: int = 0, resamples: int = RESAMPLES) -> GateResult:
    """The comparison of two paired models under the gate's settings (metric, margin, confidence)."""
    name = str(settings["metric"])
    margin = float(settings.get("margin", DEFAULT_MARGIN))
    confidence = float(settings.get("confidence", DEFAULT_CONFIDENCE))
    if name == "roc_auc" and len(np.unique(p.y)) < 2:
        raise CannotEvaluate(f"ROC AUC is undefined: the hold-out has one class only (all {p.y[0]:g})")
    checks = [bootstrap_check(p, name, margin, confidence, resamples, seed)]
    if name == "roc_auc":
        checks.append(delong_check(p, margin, confidence))
    if name == "accuracy":
        checks.append(mcnemar_check(p, confidence))
    status = worst([c.status for c in checks])
    shown = [c for c in checks if c.status != "pass"] or checks[:1]
    return GateResult(GATE, status, "; ".join(c.reason for c in shown), confidence=confidence,
                      n=len(p.y), checks=checks, details={"metric": name, "margin": margin})


def compare_predictions(task: str, y_true: Any, challenger: Any, champion: Any, settings: dict[str, Any],
                        seed: int = 0, resamples: int = RESAMPLES,
                        mase_scales: tuple[float | None, float | None] = (None, None)) -> GateResult:
    """The gate on two models' predictions of the same hold-out; `CannotEvaluate` if they cannot be
    compared."""
    try:
        return assess(pair(task, y_true, challenger, champion, mase_scales), settings, seed, resamples)
    except CannotEvaluate as exc:
        raise exc.within("cannot compare the models") from None


# -- the champion ----------------------------------------------------------------------------


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    return against_champion(ctx, settings, _against)


def against_champion(ctx: GateContext, settings: dict[str, Any],
                     judge: Callable[[GateContext, dict[str, Any], Champion], GateResult]) -> GateResult:
    """`judge` the challenger against the verified champion at the policy's stage (`against`); the
    gate's result when there is none. The one champion lookup of the ML and the decision compare."""
    from modelops_ci.errors import UserError
    from modelops_ci.registry import state

    stage = str(settings.get("against") or _last_stage(ctx))
    try:
        found, registry = state.champion(ctx.step.root, ctx.name, stage)
    except UserError as exc:
        raise CannotEvaluate(str(exc)) from None
    if found is None:
        note = registry.refusal_note(ctx.name, stage)
        refused = f"; not counted because they do not verify: {note} (`modelops-ci verify --all`)" if note else ""
        return _no_champion(ctx.name, stage, bool(settings.get("allow_first", False)), refused)
    where = {"against": stage, "champion": {"version": found.version, "commit": found.commit,
                                            "tag": found.tag}}
    from modelops_ci.ml.model_store import ModelIntegrityError

    cannot = f"cannot compare with the champion {found.version} ({found.tag})"
    try:
        result = judge(ctx, settings, found)
    except CannotEvaluate as exc:
        raise exc.within(cannot, details=where) from None
    except ModelIntegrityError as exc:  # the challenger's card
        raise CannotEvaluate(f"{cannot}: {exc}", details=where) from None
    result.details.update(where)
    if result.status != "error":
        result.reason = f"against {stage} {found.version}: {result.reason}"
    return result


def _last_stage(ctx: GateContext) -> str:
    stages = (ctx.params.get("governance") or {}).get("stages") or []
    return str(stages[-1]) if stages else DEFAULT_STAGE


def _no_champion(name: str, stage: str, allow_first: bool, refused: str = "") -> GateResult:
    missing = (f"no champion: no verified version of '{name}' holds stage '{stage}' (no verified tag "
               f"{name}#{stage}#N){refused}")
    if allow_first:
        return GateResult(GATE, "pass", f"{missing}; allowed as the first model (allow_first)",
                          details={"against": stage, "champion": None})
    return GateResult(GATE, "fail", f"{missing}, and the policy does not allow a first model "
                      "(allow_first is false): promote a first version by a reviewed PR, or set allow_first",
                      details={"against": stage, "champion": None})


def _against(ctx: GateContext, settings: dict[str, Any], found: Champion) -> GateResult:
    own_card = ctx.card()
    from modelops_ci.ml.model_types import policy_types

    model, facts = load_champion(ctx.step.root, ctx.name, found, extra_types=policy_types(ctx.params))
    if own_card.get("sha256") == facts.get("sha256"):
        return GateResult(GATE, "pass", f"the challenger is the champion's model (same sha256 "
                          f"{str(facts.get('sha256'))[:12]}…)", details={"same_model": True})
    task = str(ctx.params["task"])
    column = "y_score" if task == "classification" else "y_pred"
    ours = ctx.frame("predictions")
    missing = [c for c in ("y_true", column) if c not in ours.columns]
    if missing:
        raise CannotEvaluate(f"{ctx.step.layout.predictions} has no column {', '.join(missing)}: re-run evaluate")
    theirs = champion_predictions(ctx, model, facts, ctx.frame("test"))
    _same_rows(ours, theirs)
    scales = (own_card.get("mase_scale"), facts.get("mase_scale"))
    decisions = (ours.get("y_pred"), theirs.get("y_pred")) if task == "classification" else (None, None)
    return assess(pair(task, ours["y_true"], ours[column], theirs[column], scales, decisions), settings,
                  seed=ctx.step.seed)


def load_champion(root: Path, pipeline: str, found: Champion, *,
                  extra_types: Iterable[str] = ()) -> tuple[Any, dict[str, Any]]:
    """The champion's model and card, read from DVC by the md5s its commit's dvc.lock records (bytes
    that hash otherwise are refused) and sha256-checked on load, with the audited types plus
    `extra_types` (the ones the current policies add) trusted."""
    from modelops_ci.errors import UserError
    from modelops_ci.ml.model_store import ModelIntegrityError
    from modelops_ci.registry import evidence
    from modelops_ci.registry.dvc_cache import load_model_at

    try:
        digests = evidence.collect(root, pipeline, found.commit, version=found.version).model
        return load_model_at(root, pipeline, found.commit, digests, extra_types=extra_types)
    except ModelIntegrityError as exc:
        raise CannotEvaluate(f"its model fails the integrity check: {exc}") from None
    except UserError as exc:
        raise CannotEvaluate(f"cannot read the champion at commit {found.commit[:12]}: {exc}") from None


def champion_predictions(ctx: GateContext, model: Any, facts: dict[str, Any], test: Any) -> Any:
    """The champion's predictions on the current hold-out, made as `evaluate` makes them."""
    from modelops_ci.steps.evaluate import predict

    try:
        return predict(ctx.step, model, facts, test)
    except KeyError as exc:
        raise CannotEvaluate(f"it reads column {exc}, which the current hold-out lacks: the two "
                             "models cannot be scored on the same data") from None
    except ValueError as exc:
        raise CannotEvaluate(f"it cannot predict on the current hold-out ({exc})") from None


def _same_rows(ours: Any, theirs: Any) -> None:
    if len(ours) != len(theirs):
        raise CannotEvaluate(f"the challenger's predictions have {len(ours)} rows but the hold-out has "
                             f"{len(theirs)}: predictions.parquet is stale; re-run evaluate")
    labels = np.asarray(ours["y_true"], dtype=float), np.asarray(theirs["y_true"], dtype=float)
    if not np.array_equal(*labels, equal_nan=True):
        raise CannotEvaluate("the challenger's predictions are not of the current hold-out's labels (stale "
                             "predictions.parquet, or the target or positive class changed): re-run evaluate")
