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
    assert "input_drift: open, first seen 1970-01-01 13:00 UTC" in "".join(found.text)
    assert "ghost v9 is in the log but no deployment names it" in "".join(found.text)
    assert [w["status"] for w in report["models"][0]["windows"]] == ["pass", "pass", "inconclusive", "drift"]
    assert "| 1970-01-01 13:00 | v1 | 800 | drift |" in markdown.read_text()


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    _, _, page = monitoring_report(tmp_path, model=HOSTILE, stage="prod<b>")
    found = parsed(page.read_text())
    assert "script" not in found.tags and "b" not in found.tags
    assert any(HOSTILE in t for t in found.text)


def test_a_kept_profile_of_another_version_is_left_out_and_named(tmp_path: Path) -> None:
    """Profiles kept under MODEL/VERSION are read back for the days; one that says it is of another
    version (moved there by hand, or another tool's) is left out, not merged into the day."""
    from modelops_ci.commands.monitor_traffic import _keep_profiles
    from modelops_ci.monitor import sketch
    from tests.helpers.monitoring import watched_model

    watched, references = watched_model()
    kept = tmp_path / "kept"
    problems = _keep_profiles(kept, watched, references, now=20 * 3600.0)
    assert problems == [] and len(watched.days) == 1
    stray = sketch.load(next((kept / "credit" / "v1").glob("*.npz")))
    stray.version = "v2"
    sketch.save(stray, kept / "credit" / "v1" / "99999-100000.npz")
    problems = _keep_profiles(kept, watched, references, now=20 * 3600.0)
    assert problems == [f"{kept}/credit/v1/99999-100000.npz: a profile of credit v2, not of credit v1: left out"]
    assert watched.days[0].rows == 3 * 800  # the day as it was
    _keep_profiles(kept, watched, references, now=3 * 86400.0)  # two days on: the lookback (1d) starts on day 2
    assert watched.days == []  # day 0's profiles are kept on disk but not read again
    assert len(list((kept / "credit" / "v1").glob("*.npz"))) == 4 + 1  # four hour windows and the stray
