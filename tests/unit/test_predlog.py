"""The prediction log: round trip, group commit, labels, rotation to Parquet, and corrupt files refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from modelops_ci.errors import UserError
from modelops_ci.serve import predlog
from modelops_ci.serve.feedback import join_feedback
from modelops_ci.serve.predlog import LogCorrupt, PredictionLog, read, rotate
from modelops_ci.serve.records import COLUMNS, Feedback, Record

APPENDS = 100


def _record(number: int, *, rows: int = 1, model: str = "credit", role: Any = "champion") -> Record:
    served = role != "shadow"
    return Record(f"req-{number}", model, "3", role, served, 1000.0 + number, 2.5, 200, None,
                  json.dumps([{"age": number}] * rows), json.dumps([number % 2] * rows), json.dumps([0.25] * rows))


def _refusal(number: int) -> Record:
    return Record(f"bad-{number}", "credit", None, "none", True, 1000.0 + number, 0.1, 422, "column age missing",
                  "", "", "")


@contextlib.contextmanager
def _write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holds the log's write lock: the writer waits at its BEGIN, and whatever is
    appended meanwhile queues up behind it."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_records_and_labels_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "deep" / "predictions.db"  # folders are made
    records = [_record(0, rows=3), _record(0, rows=3, role="shadow"), _refusal(1), _record(2, model="churn")]
    with PredictionLog.open(path) as log:
        log.append(records[:2]).result()
        asyncio.run(log.write(records[2:]))
        log.add_feedback([Feedback("req-0", 2, '"late"', 5.0)]).result()
    frame = read(path)
    assert list(frame.columns) == [*COLUMNS, "seq", "label"]
    assert list(frame["seq"]) == [1, 2, 3, 4]
    back = [Record(**{name: row[name] for name in COLUMNS}) for row in frame.to_dict("records")]
    assert back == records
    assert list(frame["label"]) == ['[null, null, "late"]'] * 2 + [None, None]  # a shadow shares the request's label
    assert list(read(path, model="churn")["request_id"]) == ["req-2"]
    assert list(read(path, since=1001.0, until=1002.0)["request_id"]) == ["bad-1"]


def test_appends_queued_together_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    statements: list[str] = []
    with PredictionLog.open(path, trace=statements.append) as log:
        statements.clear()
        with _write_lock_held(path):
            futures = [log.append([_record(number)]) for number in range(APPENDS)]
        for future in futures:
            future.result()
        commits = statements.count("COMMIT")
    # The writer took what was queued when it woke (maybe just the first) and waited for the lock;
    # everything appended meanwhile went into the next transaction: two commits at most, not 100.
    assert 1 <= commits <= 2
    assert len(read(path)) == APPENDS


def test_a_bad_record_fails_its_own_append_not_its_neighbours(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    broken: Any = {"not": "text"}  # SQLite cannot store a dict
    with PredictionLog.open(path) as log:
        with _write_lock_held(path):
            good = log.append([_record(1)])
            bad = log.append([Record("bad", "credit", "3", "champion", True, 1.0, 1.0, 200, None, broken, "", "")])
            neighbour = log.append([_record(2)])
        with pytest.raises(sqlite3.Error):
            bad.result()
        good.result()
        neighbour.result()
        log.append([_record(3)]).result()  # the writer lives on
    assert list(read(path)["request_id"]) == ["req-1", "req-2", "req-3"]


def test_close_writes_everything_queued(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    log = PredictionLog.open(path)
    futures: list[Future[None]] = [log.append([_record(number)]) for number in range(APPENDS)]
    log.close()
    assert all(future.done() and future.exception() is None for future in futures)
    assert len(read(path)) == APPENDS
    with pytest.raises(RuntimeError, match="closed"):
        log.append([_record(0)])


def test_the_latest_label_wins(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    with PredictionLog.open(path) as log:
        log.append([_record(0, rows=2)]).result()
        log.add_feedback([Feedback("req-0", 0, "1", 20.0), Feedback("req-0", 1, "0", 10.0)]).result()
        log.add_feedback([Feedback("req-0", 0, "0", 30.0), Feedback("req-0", 1, "1", 5.0)]).result()
    assert list(read(path)["label"]) == ["[0, 0]"]  # row 1's second label is older than its first


def test_a_batch_of_labels_joins_and_names_the_ids_never_logged(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    with PredictionLog.open(path) as log:
        log.append([_record(0), _record(1, rows=2)]).result()
    table = tmp_path / "labels.csv"
    table.write_text("request_id,row,label\nreq-0,0,1\nghost,0,1\nreq-1,1,0\nphantom,0,0\n")
    with pytest.raises(UserError) as refused:
        join_feedback(path, table)
    message = str(refused.value)
    assert message.startswith(f"{table}:3: request id 'ghost' was never logged")
    assert "2 label(s)" in message and "also 5" in message and "the other 2 joined" in message
    assert list(read(path)["label"]) == ["[1]", "[null, 0]"]
    no_row = tmp_path / "labels.parquet"
    pd.DataFrame({"request_id": ["req-0"], "label": ["yes"]}).to_parquet(no_row)
    assert join_feedback(path, no_row) == 1
    assert list(read(path)["label"]) == ['["yes"]', "[null, 0]"]


@pytest.mark.parametrize(("text", "expected"), [
    ("request_id,row\nreq-0,0\n", "labels.csv: no column label: "),
    ("request_id,label\nreq-0,1\n,1\n", "labels.csv:3: no request_id or no label: "),
    ("request_id,row,label\nreq-0,-1,1\n", "labels.csv:2: row -1 is not a row number: "),
])
def test_a_bad_table_of_labels_is_refused_with_where(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "predictions.db"
    with PredictionLog.open(path) as log:
        log.append([_record(0)]).result()
    table = tmp_path / "labels.csv"
    table.write_text(text)
    with pytest.raises(UserError, match=expected):
        join_feedback(path, table)
    assert read(path)["label"].isna().all()


@pytest.fixture
def full_log(tmp_path: Path) -> Path:
    path = tmp_path / "predictions.db"
    with PredictionLog.open(path) as log:
        log.append([_record(number, rows=1 + number % 3) for number in range(50)]).result()
        labels = [Feedback(f"req-{number}", 0, "1", 1000.5 + number) for number in range(0, 50, 5)]
        log.add_feedback(labels).result()
    return path


def test_rotated_records_read_back_the_same(full_log: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated"
    before = read(full_log)
    files = rotate(full_log, rotated, before=1030.0, max_rows=20)
    assert [file.name for file in files] == ["records-1-20.parquet", "records-21-30.parquet",
                                            "feedback-1-6.parquet"]
    assert len(read(full_log)) == 20  # only what is left in SQLite
    assert_frame_equal(read(full_log, rotated), before)
    assert_frame_equal(read(full_log, rotated, since=1010.0, until=1040.0),
                       before[before["time"].between(1010.0, 1040.0, inclusive="left")].reset_index(drop=True))
    rotate(full_log, rotated)
    with PredictionLog.open(full_log) as log:  # seqs are never given twice, even once the table is empty
        log.append([_record(99)]).result()
    after = read(full_log, rotated)
    assert list(after["seq"]) == [*range(1, 51), 51]
    assert_frame_equal(after.iloc[:50], before)


def test_a_rotation_killed_before_its_delete_doubles_nothing(full_log: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated"
    before = read(full_log)
    with contextlib.closing(predlog._connect(full_log)) as connection:
        chunk = predlog._export(connection, "records", rotated, float("inf"), 30)
        assert chunk is not None
        predlog._export(connection, "feedback", rotated, float("inf"), 100)
    assert_frame_equal(read(full_log, rotated), before)  # rows in both places, read once
    rotate(full_log, rotated)  # the next rotation finishes the job
    assert len(read(full_log)) == 0
    assert_frame_equal(read(None, rotated), before)


def test_a_fresh_log_rotating_beside_an_old_ones_files_is_refused(full_log: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated"
    rotate(full_log, rotated)
    fresh = tmp_path / "fresh.db"
    with PredictionLog.open(fresh) as log:
        log.append([_record(7000)]).result()  # seq 1 again, another request
    with pytest.raises(UserError, match="two prediction logs give seq 1 to different rows"):
        rotate(fresh, rotated)
    with pytest.raises(UserError, match="two prediction logs"):
        read(fresh, rotated)
    assert len(read(fresh)) == 1


@pytest.fixture(scope="module")
def sound_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a checkpointed log of a few hundred pages."""
    path = tmp_path_factory.mktemp("sound") / "predictions.db"
    with PredictionLog.open(path) as log:
        log.append([_record(number, rows=5) for number in range(2000)]).result()
    return path.read_bytes()


def _random_bytes(sound: bytes) -> bytes:
    return bytes((index * 7919 + 13) % 251 for index in range(8192))


def _truncated(sound: bytes) -> bytes:
    return sound[: len(sound) // 2]


def _garbled(sound: bytes) -> bytes:
    """The schema (page 1) intact, the second half of the records' pages overwritten."""
    half = len(sound) // 2
    return sound[:half] + bytes((index * 31 + 7) % 256 for index in range(len(sound) - half))


def _other_shape(sound: bytes) -> bytes:
    del sound
    return b""  # made with SQLite below


@pytest.mark.parametrize(("damage", "what"), [
    (_random_bytes, "not a SQLite database"),
    (_truncated, "SQLite's quick_check fails (database disk image is malformed)"),
    (_garbled, "SQLite's quick_check fails (database disk image is malformed)"),
    (_other_shape, "its tables are not a prediction log's (experiments(id, name))"),
])
def test_a_corrupt_log_is_refused_and_kept_as_it_is(tmp_path: Path, sound_log: bytes, damage: Any, what: str) -> None:
    path = tmp_path / "predictions.db"
    path.write_bytes(damage(sound_log))
    if damage is _other_shape:
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("CREATE TABLE experiments (id INTEGER, name TEXT)")
            other.commit()
    kept = path.read_bytes()
    with pytest.raises(LogCorrupt) as refused:
        PredictionLog.open(path)
    assert isinstance(refused.value, UserError)
    assert str(refused.value) == (f"{path}: {what}: the file was kept as it is for inspection; move it aside "
                                  f"with its -wal and -shm files (e.g. `mv {path} {path}.bad`) to start a fresh log")
    with pytest.raises(LogCorrupt):
        rotate(path, tmp_path / "rotated")
    assert path.read_bytes() == kept
    assert not (tmp_path / "rotated").exists()


@pytest.mark.parametrize(("survives", "level"), [("process", 1), ("power", 2)])  # NORMAL, FULL
def test_what_a_record_outlives_sets_how_often_sqlite_syncs(tmp_path: Path, survives: str, level: int) -> None:
    connection = predlog._connect(tmp_path / "log.sqlite", survives=survives)  # type: ignore[arg-type]
    try:
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == level
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_a_record_alone_commits_on_the_callers_thread_and_waits_for_nothing(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "predictions.db"
    threads: list[str] = []
    with PredictionLog.open(path, trace=lambda sql: threads.append(threading.current_thread().name)) as log:
        threads.clear()
        assert log.write_now([_record(1)]) is True
        assert set(threads) == {threading.current_thread().name}  # BEGIN, INSERT, COMMIT: no writer thread
        asyncio.run(log.write([_record(2)], alone=True))
        assert set(threads) == {threading.current_thread().name}
    assert list(read(path)["request_id"]) == ["req-1", "req-2"]


def test_a_record_alone_never_waits_for_a_lock_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    broken: Any = {"not": "text"}
    with PredictionLog.open(path) as log:
        with _write_lock_held(path):  # another connection writes (a rotation): not on the event loop's time
            assert log.write_now([_record(0)]) is False
            queued = log.append([_record(1)])
            assert log.write_now([_record(0)]) is False  # the writer holds the queue or its own commit
        queued.result()
        asyncio.run(log.write([_record(2)], alone=True))  # idle again: committed here
        with pytest.raises(sqlite3.Error):
            log.write_now([Record("bad", "credit", "3", "champion", True, 1.0, 1.0, 200, None, broken, "", "")])
        assert log.write_now([_record(3)]) is True  # the log lives on
    assert list(read(path)["request_id"]) == ["req-1", "req-2", "req-3"]
