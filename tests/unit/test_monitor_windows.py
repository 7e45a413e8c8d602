"""Tumbling windows over logged rows (monitor/windows.py): clock-aligned time windows, count
windows, one model version at a time, and window specs that say what is wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from modelops_ci.monitor.windows import WindowSpec, ordered, parse, tumbling


def logged(entries: list[tuple[str, str, float]]) -> pd.DataFrame:
    return ordered(pd.DataFrame(entries, columns=["model", "version", "time"]))


def test_time_windows_are_clock_hours_per_model_version() -> None:
    rows = logged([("credit", "v1", 3600.0 * 10 + 5), ("credit", "v1", 3600.0 * 10 + 3599),
                   ("credit", "v1", 3600.0 * 12), ("credit", "v2", 3600.0 * 10 + 7), ("churn", "v1", 42.0)])
    found = [(w.model, w.version, w.start, w.end, w.size) for w in tumbling(rows, parse("1h"))]
    assert found == [("churn", "v1", 0.0, 3600.0, 1),
                     ("credit", "v1", 36000.0, 39600.0, 2), ("credit", "v1", 43200.0, 46800.0, 1),
                     ("credit", "v2", 36000.0, 39600.0, 1)]


def test_each_window_holds_exactly_its_rows() -> None:
    rows = logged([("m", "v1", float(t)) for t in range(0, 1000, 7)])
    for window in tumbling(rows, parse("60s")):
        times = rows["time"].iloc[window.rows]
        assert ((times >= window.start) & (times < window.end)).all()
    assert sum(w.size for w in tumbling(rows, parse("60s"))) == len(rows)


def test_count_windows_take_that_many_rows_and_the_last_one_the_rest() -> None:
    rows = logged([("m", "v1", float(t)) for t in range(25)])
    windows = tumbling(rows, parse("10 rows"))
    assert [w.size for w in windows] == [10, 10, 5]
    assert (windows[0].start, windows[1].start) == (0.0, 10.0)
    assert windows[0].end > 9.0 and windows[0].end <= windows[1].start


@pytest.mark.parametrize(("text", "spec"), [
    ("15m", WindowSpec("time", 900.0)), ("1d", WindowSpec("time", 86400.0)), ("2h", WindowSpec("time", 7200.0)),
    ("5000 rows", WindowSpec("rows", 5000.0)), ("1 row", WindowSpec("rows", 1.0))])
def test_window_specs(text: str, spec: WindowSpec) -> None:
    assert parse(text) == spec
    assert parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "hourly", "0h", "-1h", "1.5 rows", "10 minutes"])
def test_a_bad_window_spec_says_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="give a time such as 15m, 1h or 1d, or a count such as 5000 rows"
                       if text != "1.5 rows" else "a count of rows is a whole number"):
        parse(text)
