"""Per-series forecasting on lag, seasonal and (optionally) trend features, optionally on the
log of the target, with recursive multi-step forecasts.

Each test period is forecast from what was known `model.horizon` periods before it (default:
from the end of training); steps after that origin feed on earlier forecasts, never on the
actual values they forecast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops_ci.steps.context import StepContext

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

MIN_TRAINING_ROWS = 4


def ordered_target(ctx: StepContext, frame: pd.DataFrame) -> list[float]:
    from modelops_ci.steps.timeaxis import time_key

    keys = time_key(ctx, frame[ctx.data["time"]])
    ordered = frame.assign(_t=keys).sort_values("_t", kind="stable")
    return [float(v) for v in ordered[ctx.data["target"]["column"]]]


def settings(ctx: StepContext) -> tuple[list[int], int]:
    model = ctx.params["model"]
    return [int(k) for k in model.get("lags") or [1]], int(model.get("season") or 1)


def features(history: Mapping[int, float] | list[float], t: int, lags: list[int], season: int,
             trend: bool = True) -> list[float]:
    """Lags of the target, one-hot season (first season as baseline), and the time index."""
    seasonal = [1.0 if t % season == s else 0.0 for s in range(1, season)]
    return [history[t - k] for k in lags] + seasonal + ([float(t)] if trend else [])


def model_scale(values: list[float], log: bool) -> list[float]:
    return [math.log(v) for v in values] if log else list(values)


def _unscale(value: float, log: bool) -> float:
    return math.exp(value) if log else value


def fit(ctx: StepContext, train: pd.DataFrame, estimator: Any) -> tuple[Pipeline, dict[str, Any]]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_ci.steps.estimators import SCALE_SENSITIVE

    y = ordered_target(ctx, train)
    lags, season = settings(ctx)
    trend = bool(ctx.params["model"].get("trend", True))
    log = bool(ctx.params["model"].get("log_target", False))
    if log and min(y) <= 0:
        raise ctx.fail("spec.model.log_target", f"the target has values <= 0 (smallest {min(y):g}), which have "
                       "no logarithm", "set log_target: false, or shift the target")
    start = max(lags)
    if len(y) - start < MIN_TRAINING_ROWS:
        raise ctx.fail("spec.model.lags", f"the training series has {len(y)} periods, too short for lags "
                       f"up to {start} (needs at least {start + MIN_TRAINING_ROWS})",
                       "use smaller lags or a longer series")
    z = model_scale(y, log)
    X = [features(z, t, lags, season, trend) for t in range(start, len(z))]
    steps = ([StandardScaler()] if type(estimator).__module__.startswith(SCALE_SENSITIVE) else [])
    model = make_pipeline(*steps, estimator).fit(X, z[start:])
    naive = [abs(y[t] - y[t - season]) for t in range(season, len(y))]
    facts = {"task": "forecast", "lags": lags, "season": season, "n_train": len(y), "trend": trend,
             "log_target": log, "history_tail": z[-start:],
             "mase_scale": sum(naive) / len(naive) if naive else None,
             "target": ctx.data["target"]["column"], "time": ctx.data["time"]}
    return model, facts


def forecast(model: Any, facts: dict[str, Any], steps: int) -> list[float]:
    """`steps` periods after the training period, each from the ones before."""
    return rolling(model, facts, [], steps, steps)


def rolling(model: Any, facts: dict[str, Any], actual: list[float], steps: int, horizon: int) -> list[float]:
    """Forecast each of `steps` periods after training from what was known `horizon` periods
    before it (rolling origin, no refit): the actual values up to then, our forecasts after.

    With `horizon >= steps` every period is forecast from the end of training.
    """
    lags, season = facts["lags"], facts["season"]
    trend, log = bool(facts.get("trend", True)), bool(facts.get("log_target", False))
    n_train, tail = int(facts["n_train"]), list(facts["history_tail"])  # tail: on the model's scale
    known = {n_train - len(tail) + i: v for i, v in enumerate(tail)}
    known.update({n_train + i: v for i, v in enumerate(model_scale(actual, log))})
    predictions = []
    for t in range(n_train, n_train + steps):
        origin = max(t - horizon, n_train - 1)
        history = {k: v for k, v in known.items() if k <= origin}
        for s in range(origin + 1, t + 1):
            history[s] = float(model.predict([features(history, s, lags, season, trend)])[0])
        predictions.append(_unscale(history[t], log))
    return predictions
