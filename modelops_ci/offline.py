"""No traffic leaves the machine: DVC's analytics/updater and MLflow's telemetry are turned off
for this process and every subprocess it starts (DVC, MLflow, git hooks)."""

from __future__ import annotations

import os

QUIET_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
DVC_CONFIG = {"core.analytics": "false", "core.check_update": "false"}


def apply() -> None:
    """Set the opt-outs in os.environ unless the user set them explicitly."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
