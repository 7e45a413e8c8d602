"""A monitoring report built for real: synthetic logged rows of a model (hours 10 to 13, the last
shifted), assessed by monitor.watch against a reference, with a calibration for the estimates and
labels in the last hour, alerts decided by monitor.alerts, written by `monitor --traffic`'s
write_report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelops_ci.commands.monitor_traffic import Watched, write_report
from modelops_ci.gates import profile
from modelops_ci.gates.drift import univariate
from modelops_ci.monitor.alerts import decide, signals
from modelops_ci.monitor.estimate import calibrate
from modelops_ci.monitor.policy import read
from modelops_ci.monitor.watch import Reference, watch

NUMERIC = ["income", "debt"]
CATEGORICAL = ["region"]
HOUR = 3600.0


def rows(rng: np.random.Generator, n: int, hour: int, model: str, shift: float = 0.0) -> pd.DataFrame:
    scores = rng.random(n)
    return pd.DataFrame({"model": model, "version": "v1", "time": hour * HOUR + np.arange(n) * (HOUR / n),
                         "income": rng.normal(50 + 10 * shift, 10, n), "debt": rng.gamma(2.0, 5.0, n),
                         "region": rng.choice(["north", "south"], n), "score": scores,
                         "label": np.where(rng.random(n) < scores, "bad", "good") if hour == 13 else None})


def monitoring_report(folder: Path, model: str = "credit", stage: str = "production") -> list[Path]:
    watched, _ = watched_model(model)
    return write_report(folder, stage, [watched], ["ghost v9 is in the log but no deployment names it"])


def watched_model(model: str = "credit") -> tuple[Watched, dict[tuple[str, str], Reference]]:
    """The model's windows watched and its alerts decided at hour 14, and its reference."""
    rng = np.random.default_rng(11)
    logged = pd.concat([rows(rng, 800, hour, model, shift=1.0 if hour == 13 else 0.0) for hour in (10, 11, 13)],
                       ignore_index=True)
    training = rows(rng, 5000, 0, model).drop(columns=["label"])
    holdout = rng.random(2000)
    reference = Reference(profile.build(training, NUMERIC, CATEGORICAL, grid=univariate.RAW_GRID),
                          profile.numeric_summary(holdout), calibrate(holdout, (rng.random(2000) < holdout) * 1.0),
                          "bad")
    monitoring = read({"min_samples": 200, "max_drifted_share": 0.0, "alert_on": ["input_drift", "performance"],
                       "min_performance": {"accuracy": 0.3}})
    found = watch(logged, {(model, "v1"): reference}, monitoring.window, monitoring.settings)
    watched = Watched(model, monitoring, found)
    watched.actions = decide(signals(found.assessments, monitoring.alerts), [], monitoring.alerts, 14 * HOUR)
    return watched, {(model, "v1"): reference}
