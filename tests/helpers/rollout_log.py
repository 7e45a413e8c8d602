"""Real roll-out outcomes for the report tests: a synthetic prediction log built the way the server
writes it (records.COLUMNS + seq + label), analysed by rollout.analysis.analyse and decided by
rollout.decision.decide, then `Outcome.to_json()` as `modelops-ci rollout` hands it to the report."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from modelops_ci.commands.rollout import Outcome
from modelops_ci.rollout.analysis import analyse
from modelops_ci.rollout.decision import decide
from modelops_ci.serve.records import COLUMNS
from modelops_ci.spec.deployment import Analysis as Settings
from modelops_ci.spec.deployment import ModelDeployment, Step

SINCE = 1_800_000_000.0
INTERVAL = 300.0
STEPS = (Step(10, 600.0), Step(50, 600.0), Step(100, 0.0))
METRICS: dict[str, dict[str, Any]] = {
    "error_rate": {"max": 0.02}, "latency_p99_ms": {"max": 50}, "agreement": {"min": 0.9},
    "prediction_drift": {"alpha": 0.01},
}


def records(name: str, version: str, role: str, per_interval: int, intervals: int, *, seed: int,
            errors: float = 0.0, interval: float = INTERVAL) -> pd.DataFrame:
    """`per_interval` one-row requests in each of `intervals` intervals from SINCE; a share
    `errors` of them answered 500."""
    rng = np.random.default_rng(seed)
    n = per_interval * intervals
    slot = np.repeat(np.arange(intervals), per_interval)
    income = rng.normal(50, 15, n).round(1)
    score = 1 / (1 + np.exp(-(0.05 * income - 2.5)))
    predicted = np.where(score > 0.5, "yes", "no")
    ok = rng.random(n) >= errors
    return pd.DataFrame({
        "request_id": [f"{role}-{seed}-{i}" for i in range(n)], "model": name, "version": version, "role": role,
        "served": True, "time": SINCE + (slot + rng.random(n)) * interval, "latency_ms": rng.gamma(2.0, 3.0, n),
        "status": np.where(ok, 200, 500), "error": np.where(ok, None, "failed"),
        "features": [json.dumps([{"income": float(x)}]) for x in income],
        "prediction": [json.dumps([str(p)]) if good else "" for p, good in zip(predicted, ok, strict=True)],
        "score": [json.dumps([round(float(s), 6)]) if good else "" for s, good in zip(score, ok, strict=True)],
        "seq": np.arange(n), "label": None})


def log(name: str, per_interval: int, intervals: int, *, errors: float = 0.0, interval: float = INTERVAL,
        challenger: str = "v1.1.0") -> pd.DataFrame:
    """A champion (v1.0.0) and a canary challenger of `name`, answering side by side."""
    frame = pd.concat([records(name, "v1.0.0", "champion", per_interval, intervals, seed=7, interval=interval),
                       records(name, challenger, "challenger", per_interval, intervals, seed=1, errors=errors,
                               interval=interval)], ignore_index=True)
    assert list(frame.columns) == [*COLUMNS, "seq", "label"]
    return frame


def model(name: str, weight: int = 10, metrics: dict[str, dict[str, Any]] | None = None, *,
          interval: float = INTERVAL, min_samples: int = 100, failure_limit: int = 2,
          **changes: Any) -> ModelDeployment:
    """`name`'s deployment: champion v1.0.0, a canary challenger v1.1.0 at `weight`, in 3 steps."""
    settings = Settings(interval=interval, min_samples=min_samples, failure_limit=failure_limit,
                        inconclusive_limit=3, metrics=METRICS if metrics is None else metrics)
    deployed = ModelDeployment(name, "v1.0.0", "v1.1.0", "canary", weight, STEPS, settings, since=SINCE)
    return replace(deployed, **changes)


def decided(frame: pd.DataFrame, deployed: ModelDeployment, completed: float, **extra: Any) -> Outcome:
    """The model's analysis and decision `completed` intervals (and 10 s) after SINCE."""
    now = SINCE + completed * deployed.analysis.interval + 10.0
    analysis = analyse(frame, deployed, now)
    return Outcome(analysis, decide(deployed, analysis.intervals, now), **extra)


def outcome(frame: pd.DataFrame, deployed: ModelDeployment, completed: float, **extra: Any) -> dict[str, Any]:
    """`decided(...)` as the report reads it."""
    return decided(frame, deployed, completed, **extra).to_json()


def every_action(name: str = "credit") -> dict[str, dict[str, Any]]:
    """One real outcome per action the reconciler takes, of a model named `<name>-<action>`."""
    def of(action: str, per_interval: int = 150, errors: float = 0.0) -> tuple[str, pd.DataFrame]:
        return f"{name}-{action}", log(f"{name}-{action}", per_interval, 4, errors=errors)

    advancing, holding = of("advance"), of("hold")
    aborting, pausing = of("abort", errors=0.2), of("pause", per_interval=20)
    promoting, idle = of("promote"), of("idle")
    return {
        "advance": outcome(advancing[1], model(advancing[0]), 2),
        "hold": outcome(holding[1], model(holding[0]), 1),
        "abort": outcome(aborting[1], model(aborting[0]), 2, recorded="https://github.com/o/r/pull/7",
                         issue="https://github.com/o/r/issues/8"),
        "pause": outcome(pausing[1], model(pausing[0]), 3),
        "promote": outcome(promoting[1], model(promoting[0], 100), 1),
        "idle": outcome(idle[1], model(idle[0], 0), 1),
    }
