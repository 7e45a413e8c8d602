"""A policy's `monitoring:` block (spec/schemas/policy.json), read into what the monitor runs on.

    monitoring:
      window: 1h              # or 15m, 1d, 5000 rows
      lookback: 1d            # how far back each look reads the log
      min_samples: 500        # fewer rows: inconclusive
      alpha: 0.05             # the drift gate's statistics (its defaults when absent)
      correction: fdr_bh
      max_drifted_share: 0.3
      classifier_test: false  # also the classifier two-sample test per window (~0.2 s each)
      alert_on: [input_drift] # and prediction_drift, performance, volume
      retrain_on: [input_drift]  # a new incident of these also opens a retraining PR (--retrain)
      min_rows: 100           # volume: a judged window with fewer rows fires
      min_performance: {accuracy: 0.8}  # performance: estimated (or realised) surely under it fires
      group_wait: 10m         # Alertmanager's timing
      repeat_interval: 4h
      cooldown: 2h
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_ci.monitor import windows
from modelops_ci.monitor.alerts import CAUSES, AlertPolicy, Cause
from modelops_ci.monitor.assess import Settings

DEFAULT_WINDOW = "1h"
DEFAULT_LOOKBACK = "1d"


@dataclass(frozen=True)
class Monitoring:
    window: windows.WindowSpec = field(default_factory=lambda: windows.parse(DEFAULT_WINDOW))
    lookback: float = 86400.0  # seconds
    settings: Settings = field(default_factory=Settings)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    retrain_on: frozenset[Cause] = frozenset()


def seconds(text: str) -> float:
    """`30s`, `15m`, `4h`, `1d`, `1w` in seconds (the schema has checked the form)."""
    spec = windows.parse(text)
    if spec.by != "time":
        raise ValueError(f"'{text}' is a count of rows, not a time")
    return spec.size


def read(block: Mapping[str, Any] | None) -> Monitoring:
    """The monitoring a policy block asks for; the defaults for what it leaves out."""
    block = block or {}
    base = Settings()
    settings = Settings(alpha=float(block.get("alpha", base.alpha)),
                        correction=str(block.get("correction", base.correction)),
                        max_drifted_share=float(block.get("max_drifted_share", base.max_drifted_share)),
                        min_samples=int(block.get("min_samples", base.min_samples)),
                        classifier_test=bool(block.get("classifier_test", base.classifier_test)))
    defaults = AlertPolicy()
    alert_on: frozenset[Cause] = frozenset(c for c in CAUSES if c in (block.get("alert_on") or defaults.alert_on))
    alerts = AlertPolicy(alert_on=alert_on, group_wait=_time(block, "group_wait", defaults.group_wait),
                         repeat_interval=_time(block, "repeat_interval", defaults.repeat_interval),
                         cooldown=_time(block, "cooldown", defaults.cooldown), min_rows=int(block.get("min_rows", 0)),
                         min_performance={str(k): float(v) for k, v in (block.get("min_performance") or {}).items()})
    retrain_on: frozenset[Cause] = frozenset(c for c in CAUSES if c in (block.get("retrain_on") or ()))
    return Monitoring(windows.parse(str(block.get("window", DEFAULT_WINDOW))),
                      seconds(str(block.get("lookback", DEFAULT_LOOKBACK))), settings, alerts, retrain_on)


def _time(block: Mapping[str, Any], key: str, default: float) -> float:
    return seconds(str(block[key])) if key in block else default
