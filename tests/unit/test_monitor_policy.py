"""The policy's `monitoring:` block: read into windows, thresholds and alert timing, and checked by
the policy schema with file and line (the pre-commit hook and `validate` run that check)."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.monitor.policy import read
from modelops_ci.monitor.windows import WindowSpec
from tests.helpers.cli import run_cli
from tests.helpers.repos import write

POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: watch}
spec:
  selector: {names: [credit]}
  stages: [staging, production]
  monitoring:
    window: {window}
    alert_on: [{alert}]
"""


def test_a_block_reads_into_its_windows_thresholds_and_timing() -> None:
    found = read({"window": "5000 rows", "lookback": "2d", "min_samples": 300, "alpha": 0.01, "correction": "none",
                  "max_drifted_share": 0.0, "alert_on": ["input_drift", "volume"], "min_rows": 50,
                  "min_performance": {"roc_auc": 0.7}, "retrain_on": ["input_drift"], "group_wait": "30m",
                  "repeat_interval": "4h", "cooldown": "2h"})
    assert found.window == WindowSpec("rows", 5000) and found.lookback == 2 * 86400
    assert (found.settings.min_samples, found.settings.alpha, found.settings.correction) == (300, 0.01, "none")
    assert found.alerts.alert_on == {"input_drift", "volume"} and found.retrain_on == {"input_drift"}
    assert (found.alerts.group_wait, found.alerts.repeat_interval, found.alerts.cooldown) == (1800, 14400, 7200)
    assert (found.alerts.min_rows, dict(found.alerts.min_performance)) == (50, {"roc_auc": 0.7})
    defaults = read(None)
    assert (defaults.window, defaults.settings.min_samples, defaults.alerts.alert_on) == (
        WindowSpec("time", 3600), 500, {"input_drift"})


def test_a_bad_block_is_refused_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "policies/watch.yaml", POLICY.replace("{window}", "hourly").replace("{alert}", "latency"))
    done = run_cli("validate", "policies/watch.yaml", cwd=tmp_path)
    assert done.exit_code == 2
    assert "policies/watch.yaml:8:13: spec.monitoring.window: 'hourly' has the wrong form" in done.stderr
    assert ("policies/watch.yaml:9:16: spec.monitoring.alert_on[0]: 'latency' is not allowed (allowed: input_drift, "
            "prediction_drift, performance, volume)") in done.stderr
