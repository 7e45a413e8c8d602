"""Per-series forecasting on lag, seasonal and trend features, with recursive multi-step forecasts.

The test period is forecast from the end of training only (each step feeds on the previous
forecasts, never on the actual test values), as it would be in production.
"""

from __future__ import annotations

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


def features(history: Mapping[int, float] | list[float], t: int, lags: list[int], season: int) -> list[float]:
    """Lags of the target, one-hot season (first season as baseline), and the time index."""
    seasonal = [1.0 if t % season == s else 0.0 for s in range(1, season)]
    return [history[t - k] for k in lags] + seasonal + [float(t)]


def fit(ctx: StepContext, train: pd.DataFrame, estimator: Any) -> tuple[Pipeline, dict[str, Any]]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_ci.steps.train import SCALE_SENSITIVE

    y = ordered_target(ctx, train)
    lags, season = settings(ctx)
    start = max(lags)
    if len(y) - start < MIN_TRAINING_ROWS:
        raise ctx.fail("spec.model.lags", f"the training series has {len(y)} periods, too short for lags "
                       f"up to {start} (needs at least {start + MIN_TRAINING_ROWS})",
                       "use smaller lags or a longer series")
    X = [features(y, t, lags, season) for t in range(start, len(y))]
    steps = ([StandardScaler()] if type(estimator).__module__.startswith(SCALE_SENSITIVE) else [])
    model = make_pipeline(*steps, estimator).fit(X, y[start:])
    naive = [abs(y[t] - y[t - season]) for t in range(season, len(y))]
    facts = {"task": "forecast", "lags": lags, "season": season, "n_train": len(y),
             "history_tail": y[-start:], "mase_scale": sum(naive) / len(naive) if naive else None,
             "target": ctx.data["target"]["column"], "time": ctx.data["time"]}
    return model, facts


def forecast(model: Any, facts: dict[str, Any], horizon: int) -> list[float]:
    """`horizon` steps after the training period, each from the ones before."""
    lags, season = facts["lags"], facts["season"]
    n_train, tail = int(facts["n_train"]), list(facts["history_tail"])
    history: dict[int, float] = {n_train - len(tail) + i: v for i, v in enumerate(tail)}
    predictions = []
    for t in range(n_train, n_train + horizon):
        value = float(model.predict([features(history, t, lags, season)])[0])
        history[t] = value
        predictions.append(value)
    return predictions
