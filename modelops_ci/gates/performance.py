"""Performance: each required metric with a seeded bootstrap CI; it passes only when the CI's
conservative bound clears the threshold (the lower bound for a `min`, the upper for a `max`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_ci.gates import bootstrap
from modelops_ci.gates.result import CannotEvaluate, Check, GateResult, Status, worst

if TYPE_CHECKING:
    from modelops_ci.gates.context import GateContext

RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
MIN_ROWS = 10
LABELS = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "f1": "F1", "precision": "precision",
          "recall": "recall", "log_loss": "log loss", "brier": "Brier score", "rmse": "RMSE",
          "mae": "MAE", "r2": "R²", "smape": "sMAPE", "mase": "MASE"}


@dataclass(frozen=True)
class Sample:
    """Predictions of one model on the hold-out, as moments for the bootstrap."""

    task: str
    cells: bootstrap.Cells  # possibly binned, for resampling
    rows: bootstrap.Cells  # one cell per row, for the point estimate
    columns: dict[str, int]
    mase_scale: float | None = None


CLASSIFICATION_MOMENTS = ("y", "p", "yp", "correct", "squared", "log_loss")
REGRESSION_MOMENTS = ("squared", "absolute", "y", "y2", "smape")


def classification_sample(y_true: Any, y_score: Any, y_pred: Any = None) -> Sample:
    """`y_pred`: the decisions evaluate made at the model's threshold (default: the scores at 0.5)."""
    y, s = _clean_pair(y_true, y_score, "y_score")
    if np.any((s < 0) | (s > 1)):
        bad = int(np.sum((s < 0) | (s > 1)))
        raise CannotEvaluate(f"{bad} predicted probabilities are outside [0, 1]")
    if not np.isin(y, (0, 1)).all():
        raise CannotEvaluate("labels must be 0 or 1")
    p = _decisions(s, y_pred)
    eps = 1e-15
    clipped = np.clip(s, eps, 1 - eps)
    moments = np.column_stack([y, p, y * p, (y == p), (s - y) ** 2,
                               -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))])
    keys = None if len(y) <= bootstrap.EXACT_ROWS else np.column_stack([y, p, bootstrap.quantile_bins(s)])
    columns = {name: i for i, name in enumerate(CLASSIFICATION_MOMENTS)}
    return Sample("classification", bootstrap.make_cells(moments, keys, s),
                  bootstrap.make_cells(moments, None, s), columns)


def _decisions(scores: np.ndarray, y_pred: Any) -> np.ndarray:
    from modelops_ci.ml import threshold

    if y_pred is None:
        return threshold.decide(scores, threshold.DEFAULT).astype(float)
    p = _numbers(y_pred, "predicted classes (y_pred)")
    if len(p) != len(scores):
        raise CannotEvaluate(f"{len(p)} predicted classes for {len(scores)} scores: re-run evaluate")
    if not np.isin(p, (0, 1)).all():
        raise CannotEvaluate("the predicted classes (y_pred) must be 0 or 1: re-run evaluate")
    return p


def regression_sample(y_true: Any, y_pred: Any, mase_scale: float | None = None,
                      task: str = "regression") -> Sample:
    y, p = _clean_pair(y_true, y_pred, "y_pred")
    e = p - y
    denominator = np.abs(y) + np.abs(p)
    smape = np.divide(200 * np.abs(e), denominator, out=np.zeros_like(e), where=denominator > 0)
    moments = np.column_stack([e**2, np.abs(e), y, y**2, smape])
    keys = None if len(y) <= bootstrap.EXACT_ROWS else np.column_stack(
        [bootstrap.quantile_bins(y, 64), bootstrap.quantile_bins(e, 256)])
    columns = {name: i for i, name in enumerate(REGRESSION_MOMENTS)}
    cells, rows = bootstrap.make_cells(moments, keys), bootstrap.make_cells(moments)
    return Sample(task, cells, rows, columns, mase_scale)


def _clean_pair(truth: Any, predicted: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y, s = _numbers(truth, "labels"), _numbers(predicted, what)
    if len(y) != len(s):
        raise CannotEvaluate(f"{len(s)} predictions for {len(y)} labels")
    for name, values in (("labels", y), (what, s)):
        bad = int(np.sum(~np.isfinite(values)))
        if bad:
            raise CannotEvaluate(f"{bad} of {len(values)} {name} are NaN or infinite")
    if len(y) < MIN_ROWS:
        raise CannotEvaluate(f"only {len(y)} rows in the hold-out; at least {MIN_ROWS} are needed")
    return y, s


def _numbers(values: Any, what: str) -> np.ndarray:
    try:
        array: np.ndarray = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise CannotEvaluate(f"the {what} are not numbers: write one number per row") from None
    return array


def metric(sample: Sample, name: str) -> Callable[[np.ndarray, bootstrap.Cells], np.ndarray]:
    """The metric as a function of bootstrap weights (b x K) over the sample's cells."""
    c = sample.columns

    def sums(w: np.ndarray, cells: bootstrap.Cells) -> tuple[np.ndarray, np.ndarray]:
        return w @ cells.means, w.sum(axis=1)

    def ratio(top: str, bottom: str | None = None, scale: float = 1.0) -> Callable[..., np.ndarray]:
        def value(w: np.ndarray, cells: bootstrap.Cells) -> np.ndarray:
            s, n = sums(w, cells)
            with np.errstate(invalid="ignore", divide="ignore"):
                result: np.ndarray = s[:, c[top]] / (s[:, c[bottom]] if bottom else n) / scale
            return result
        return value

    def f1(w: np.ndarray, cells: bootstrap.Cells) -> np.ndarray:
        s, _ = sums(w, cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            result: np.ndarray = 2 * s[:, c["yp"]] / (s[:, c["y"]] + s[:, c["p"]])
        return result

    def rmse(w: np.ndarray, cells: bootstrap.Cells) -> np.ndarray:
        root: np.ndarray = np.sqrt(ratio("squared")(w, cells))
        return root

    def r2(w: np.ndarray, cells: bootstrap.Cells) -> np.ndarray:
        s, n = sums(w, cells)
        total = s[:, c["y2"]] - s[:, c["y"]] ** 2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            result: np.ndarray = 1 - s[:, c["squared"]] / total
        return result

    def auc(w: np.ndarray, cells: bootstrap.Cells) -> np.ndarray:
        return bootstrap.weighted_auc(w, cells.means[:, c["y"]], cells.order[:, 0])

    table: dict[str, Callable[..., np.ndarray]] = {
        "roc_auc": auc, "accuracy": ratio("correct"), "precision": ratio("yp", "p"),
        "recall": ratio("yp", "y"), "f1": f1, "brier": ratio("squared"), "log_loss": ratio("log_loss"),
        "rmse": rmse, "mae": ratio("absolute"), "r2": r2, "smape": ratio("smape"),
    }
    if name == "mase":
        if not sample.mase_scale:
            raise CannotEvaluate("MASE needs the training series' seasonal naive error, which is zero or missing")
        return ratio("absolute", scale=sample.mase_scale)
    if name not in table or (name in CLASSIFICATION_MOMENTS_METRICS) != (sample.task == "classification"):
        raise CannotEvaluate(f"{name} is not a metric of a {sample.task} model")
    return table[name]


CLASSIFICATION_MOMENTS_METRICS = {"roc_auc", "accuracy", "precision", "recall", "f1", "brier", "log_loss"}


def point(sample: Sample, name: str) -> float:
    return float(metric(sample, name)(np.ones((1, len(sample.rows.counts))), sample.rows)[0])


def check_metric(sample: Sample, name: str, bound: dict[str, float], confidence: float,
                 resamples: int, seed: int) -> Check:
    """One metric against its bound, decided on the bootstrap CI."""
    label = LABELS.get(name, name)
    try:
        estimate = point(sample, name)
        values = bootstrap.distribution(sample.cells, metric(sample, name), resamples, seed)
    except CannotEvaluate as exc:
        return Check(name, "error", f"{label} cannot be computed: {exc}", threshold=bound, n=sample.rows.n)
    if not np.isfinite(estimate):
        return Check(name, "error", f"{label} is undefined on this hold-out (e.g. one class only)",
                     threshold=bound, n=sample.rows.n)
    low, high = bootstrap.percentile_ci(values, confidence)
    ci_text = f"{confidence:.0%} CI {low:.3g} to {high:.3g}"
    if "min" in bound:
        ok = low >= bound["min"]
        verdict = f"at least {bound['min']:g}" if ok else f"not surely at least {bound['min']:g}"
    else:
        ok = high <= bound["max"]
        verdict = f"at most {bound['max']:g}" if ok else f"not surely at most {bound['max']:g}"
    status: Status = "pass" if ok else "fail"
    reason = f"{label} is {estimate:.3g} ({ci_text}): {verdict}"
    return Check(name, status, reason, statistic=estimate, ci=(low, high), threshold=bound, n=sample.rows.n)


def assess(sample: Sample, settings: dict[str, Any], seed: int = 0,
           resamples: int = RESAMPLES) -> GateResult:
    confidence = float(settings.get("confidence", DEFAULT_CONFIDENCE))
    checks = [check_metric(sample, name, bound, confidence, resamples, seed)
              for name, bound in sorted((settings.get("metrics") or {}).items())]
    status = worst([c.status for c in checks])
    failing = [c for c in checks if c.status != "pass"]
    reason = "; ".join(c.reason for c in failing) if failing else "; ".join(c.reason for c in checks)
    return GateResult("performance", status, reason or "no metric required", confidence=confidence,
                      n=sample.rows.n, checks=checks)


def sample_of(ctx: GateContext) -> Sample:
    predictions = ctx.frame("predictions")
    task = str(ctx.params["task"])
    if task == "classification":
        return classification_sample(predictions["y_true"], predictions["y_score"], predictions.get("y_pred"))
    scale = None
    if task == "forecast":
        scale = ctx.card().get("mase_scale")
    return regression_sample(predictions["y_true"], predictions["y_pred"], scale, task)


def evaluate(ctx: GateContext, settings: dict[str, Any]) -> GateResult:
    try:
        sample = sample_of(ctx)
    except CannotEvaluate as exc:
        raise exc.within("cannot assess the predictions") from None
    return with_threshold(assess(sample, settings, seed=ctx.step.seed), ctx)


def with_threshold(result: GateResult, ctx: GateContext) -> GateResult:
    """The result, saying at which threshold the decisions were made and how it was chosen (when the
    spec sets one: the model card records it)."""
    from modelops_ci.ml import threshold

    record = ctx.card().get("threshold") if ctx.has_card() else None
    if not isinstance(record, dict):
        return result
    result.details["threshold"] = record
    result.reason = f"{result.reason}; {threshold.describe(record)}"
    return result
