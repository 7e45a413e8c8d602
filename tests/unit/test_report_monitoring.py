"""The monitoring page and markdown (report/monitoring.py, commands/monitor_traffic.write_report),
from a report built by the real monitor: a chart per measure, the alert in the banner, hostile
names escaped, and the problems listed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.monitoring import monitoring_report
from tests.helpers.reports import parsed

HOSTILE = "m-<script>alert(1)</script>|x"


def test_the_page_draws_traffic_each_features_drift_and_the_performance(tmp_path: Path) -> None:
    data, markdown, page = monitoring_report(tmp_path)
    report = json.loads(data.read_text())
    text = page.read_text()
    found = parsed(text)
    titles = [t for t in found.text if t.endswith("per window") or "per interval" in t]
    for measure in ("income: corrected p-value", "income: Wasserstein distance (SDs)",
                    "region: Jensen-Shannon distance", "accuracy (estimated)", "roc_auc (estimated)",
                    "accuracy (realised)"):
        assert any(t.startswith(measure) for t in titles), (measure, titles)
    assert found.tags.count("svg") == 1 + len({t for t in titles if t.endswith(" per window")})
    assert '<header class="banner fail">' in text  # the drift alert is open
    assert "input_drift: open" in "".join(found.text)
    assert "ghost v9 is in the log but no deployment names it" in "".join(found.text)
    assert [w["status"] for w in report["models"][0]["windows"]] == ["pass", "pass", "inconclusive", "drift"]
    assert "| 1970-01-01 13:00 | v1 | 800 | drift |" in markdown.read_text()


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    _, _, page = monitoring_report(tmp_path, model=HOSTILE, stage="prod<b>")
    found = parsed(page.read_text())
    assert "script" not in found.tags and "b" not in found.tags
    assert any(HOSTILE in t for t in found.text)
