"""The canonical per-series list a family's evidence carries (registry/series.py), and when the tag
lists it rather than only its digest."""

from __future__ import annotations

import json

import pytest

from modelops_ci.registry import series

ROWS = [{"series": "f-b", "model_sha256": "bb", "verdict": "fail", "metrics": {"mae": 2.0}},
        {"series": "f-a", "model_sha256": "aa", "verdict": "pass", "gates": []}]
LOCK = {"stages": {"batch": {"outs": [{"path": "models/f/series", "md5": "1.dir"},
                                      {"path": "reports/f/series", "md5": "2.dir"},
                                      {"path": "reports/f/gates.json", "md5": "3"}]}}}


def report(rows: list[dict[str, object]]) -> bytes:
    return json.dumps({"verdict": "pass", "series": rows}).encode()


def test_the_list_is_canonical_whatever_order_the_report_gives() -> None:
    listed = series.entries(report(ROWS))
    assert listed == [{"series": "f-a", "model_sha256": "aa", "verdict": "pass"},
                      {"series": "f-b", "model_sha256": "bb", "verdict": "fail"}]
    assert series.digest(listed) == series.digest(series.entries(report(ROWS[::-1])))
    changed = [dict(ROWS[0], model_sha256="bc"), ROWS[1]]
    assert series.digest(series.entries(report(changed))) != series.digest(listed)


def test_the_claim_lists_the_series_up_to_the_limit_and_always_their_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    short = series.claim("f", LOCK, report(ROWS), b"params")
    assert short["list"] == series.entries(report(ROWS)) and short["series"] == 2 and short["failed"] == 1
    assert short["outputs"] == {"models/f/series": "1.dir", "reports/f/series": "2.dir"}
    monkeypatch.setattr(series, "INLINE_SERIES", 1)
    long = series.claim("f", LOCK, report(ROWS), b"params")
    assert "list" not in long and long["digest"] == short["digest"]


def test_an_unknown_series_is_named_with_the_ones_there_are() -> None:
    with pytest.raises(series.UserError, match="no series 'f-z' \\(series: f-a, f-b\\)"):
        series.entry(series.entries(report(ROWS)), "f", "f-z")
