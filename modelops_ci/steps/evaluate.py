"""evaluate: the task's metrics on the hold-out, the predictions the gates read, DVC plots data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelops_ci.ml import model_store, model_types, threshold
from modelops_ci.steps import forecast
from modelops_ci.steps.context import StepContext
from modelops_ci.steps.frames import read_parquet, sensitive_columns, write_parquet

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CALIBRATION_BINS = 10
MAX_CURVE_POINTS = 200


def run(ctx: StepContext) -> dict[str, Any]:
    test = read_parquet(ctx.path(ctx.layout.test))
    model, facts = model_store.load(ctx.path(ctx.layout.model), ctx.path(ctx.layout.model_card),
                                    extra_types=model_types.policy_types(ctx.params))
    _, metrics = evaluate_and_write(ctx, model, facts, test)
    from modelops_ci.ml import tracking

    tracking.log_evaluation(ctx.tracked, metrics, facts, [ctx.layout.test])
    return metrics


def evaluate_and_write(ctx: StepContext, model: Any, facts: dict[str, Any],
                       test: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predict the hold-out; write the predictions, the metrics and the plots' points."""
    predictions = predict(ctx, model, facts, test)
    metrics = {**compute_metrics(ctx, predictions, facts), **recorded_threshold(facts)}
    write_parquet(predictions, ctx.path(ctx.layout.predictions))
    ctx.write_json(ctx.layout.metrics, {k: (v if v == v else None) for k, v in metrics.items()})
    for name, points in plots(ctx, predictions).items():
        ctx.write_json(f"{ctx.layout.plots}/{name}.json", points)
    return predictions, metrics


def predict(ctx: StepContext, model: Any, facts: dict[str, Any], test: pd.DataFrame) -> pd.DataFrame:
    """One row per test row: truth, prediction, score, and the columns the gates group by."""
    import pandas as pd

    target = ctx.data["target"]["column"]
    out = pd.DataFrame({"row": range(len(test))})
    if ctx.task == "forecast":
        from modelops_ci.steps.timeaxis import time_key

        order = time_key(ctx, test[ctx.data["time"]]).argsort(kind="stable")
        ordered = test.iloc[order].reset_index(drop=True)
        out["time"] = ordered[ctx.data["time"]].astype(str)
        out["y_true"] = ordered[target].astype(float)
        horizon = int(ctx.params["model"].get("horizon") or len(ordered))
        out["y_pred"] = forecast.rolling(model, facts, list(out["y_true"]), len(ordered), horizon)
        return out
    X = test[facts["numeric"] + facts["categorical"]]
    if ctx.task == "classification":
        out["y_true"] = (test[target].astype(str) == facts["positive"]).astype(int).to_numpy()
        out["y_score"] = model.predict_proba(X)[:, 1]
        out["y_pred"] = threshold.decide(out["y_score"], threshold.of_card(facts))
    else:
        out["y_true"] = test[target].astype(float).to_numpy()
        out["y_pred"] = model.predict(X)
    for column in sensitive_columns(ctx.data):
        if column in test.columns:
            out[column] = test[column].astype("string").to_numpy()
    return out


def recorded_threshold(facts: dict[str, Any]) -> dict[str, float]:
    """The decision threshold beside the metrics, when the spec sets one (none: 0.5, as ever)."""
    if "threshold" not in facts:
        return {}
    return {"threshold": threshold.of_card(facts)}


def _classification_metrics() -> dict[str, Callable[[Any, Any, Any], float]]:
    from sklearn import metrics as m

    return {
        "roc_auc": lambda y, p, s: m.roc_auc_score(y, s),
        "accuracy": lambda y, p, s: m.accuracy_score(y, p),
        "f1": lambda y, p, s: m.f1_score(y, p, zero_division=0),
        "precision": lambda y, p, s: m.precision_score(y, p, zero_division=0),
        "recall": lambda y, p, s: m.recall_score(y, p, zero_division=0),
        "log_loss": lambda y, p, s: m.log_loss(y, s, labels=[0, 1]),
        "brier": lambda y, p, s: m.brier_score_loss(y, s),
    }


def _regression_metrics(facts: dict[str, Any]) -> dict[str, Callable[[Any, Any, Any], float]]:
    import numpy as np
    from sklearn import metrics as m

    def smape(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        denominator = np.abs(y) + np.abs(p)
        ratio = np.divide(2 * np.abs(p - y), denominator, out=np.zeros_like(y, dtype=float),
                          where=denominator > 0)
        return float(100 * ratio.mean())

    def mase(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        scale = facts.get("mase_scale")
        return float(m.mean_absolute_error(y, p) / scale) if scale else float("nan")

    return {
        "rmse": lambda y, p, s: m.root_mean_squared_error(y, p),
        "mae": lambda y, p, s: m.mean_absolute_error(y, p),
        "r2": lambda y, p, s: m.r2_score(y, p),
        "smape": smape,
        "mase": mase,
    }


def compute_metrics(ctx: StepContext, predictions: pd.DataFrame, facts: dict[str, Any]) -> dict[str, float]:
    table = _classification_metrics() if ctx.task == "classification" else _regression_metrics(facts)
    y = predictions["y_true"].to_numpy()
    p = predictions["y_pred"].to_numpy()
    s = predictions["y_score"].to_numpy() if "y_score" in predictions else None
    return {name: _safe(table[name], y, p, s) for name in ctx.params["metrics"] if name in table}


def _safe(metric: Callable[[Any, Any, Any], float], y: Any, p: Any, s: Any) -> float:
    """The metric, or NaN where it is undefined (e.g. ROC AUC of a one-class hold-out): the
    performance gate then reports `error` instead of the run crashing."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(metric(y, p, s))
    except ValueError:
        return float("nan")


def plots(ctx: StepContext, predictions: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Data for `dvc plots`: ROC, precision-recall, calibration; residuals; forecast vs actual."""
    y = predictions["y_true"].to_numpy()
    if ctx.task == "classification":
        return _classification_plots(y, predictions["y_score"].to_numpy())
    if ctx.task == "forecast":
        return {"forecast": [{"period": i, "time": t, "actual": float(a), "forecast": float(f)} for i, (t, a, f) in
                             enumerate(zip(predictions["time"], y, predictions["y_pred"], strict=True), 1)]}
    p = predictions["y_pred"].to_numpy()
    return {"residuals": [{"predicted": float(a), "residual": float(b - a)} for a, b in zip(p, y, strict=True)]}


def _classification_plots(y: np.ndarray, score: np.ndarray) -> dict[str, list[dict[str, Any]]]:
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    observed, expected = calibration_curve(y, score, n_bins=CALIBRATION_BINS, strategy="quantile")

    def thin(*columns: np.ndarray) -> list[tuple[float, ...]]:
        keep = np.unique(np.linspace(0, len(columns[0]) - 1, min(len(columns[0]), MAX_CURVE_POINTS)).astype(int))
        return [tuple(float(c[i]) for c in columns) for i in keep]

    return {
        "roc": [{"fpr": a, "tpr": b} for a, b in thin(fpr, tpr)],
        "precision_recall": [{"recall": a, "precision": b} for a, b in thin(recall, precision)],
        "calibration": [{"predicted": a, "observed": b} for a, b in thin(expected, observed)],
    }
