"""Atomic writes and the sweep of what killed writes leave behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_ci.fsutil import remove_leftover_temps, replacing, write_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_atomic(target, "old\n")
    with pytest.raises(RuntimeError), replacing(target) as temp:
        temp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_sweep_removes_only_the_temps_of_that_output(tmp_path: Path) -> None:
    target = tmp_path / "test[1].parquet"  # glob characters in the name match only themselves
    target.write_bytes(b"kept")
    mine = [tmp_path / ".test[1].parquet.ab12cd.tmp", tmp_path / ".test[1].parquet.zz.tmp"]
    others = [tmp_path / ".train.parquet.ab12cd.tmp", tmp_path / ".test1.parquet.ab12cd.tmp",
              tmp_path / "test[1].parquet.tmp"]
    for path in mine + others:
        path.write_bytes(b"half")
    assert remove_leftover_temps(target) == sorted(mine)
    assert all(path.exists() for path in [target, *others])
    assert not any(path.exists() for path in mine)


def test_sweep_of_a_directory_output_reaches_inside_it(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "roc.png").write_bytes(b"png")
    stale = out / "plots" / ".roc.png.x1.tmp"
    stale.write_bytes(b"half")
    assert remove_leftover_temps(out) == [stale]
    assert (out / "plots" / "roc.png").exists() and not stale.exists()


def test_sweep_of_an_output_not_yet_written_is_a_no_op(tmp_path: Path) -> None:
    assert remove_leftover_temps(tmp_path / "missing" / "model.skops") == []
