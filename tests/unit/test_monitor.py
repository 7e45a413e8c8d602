"""`modelops-ci monitor`'s choice of the newest batch of drift.current."""

from __future__ import annotations

from pathlib import Path

from modelops_ci.commands.monitor import newest_batch
from tests.helpers.repos import write


def test_the_newest_batch_is_the_last_by_name(tmp_path: Path) -> None:
    for name in ("2024-10.parquet", "2024-09.csv", ".2025-01.csv", "notes.txt", "2024-11.csv"):
        write(tmp_path, f"b/{name}", "x\n")
    (tmp_path / "b" / "2099-01.csv").mkdir()
    newest = newest_batch(tmp_path / "b")
    assert newest is not None and newest.name == "2024-11.csv"
    (tmp_path / "empty").mkdir()
    assert newest_batch(tmp_path / "empty") is None
