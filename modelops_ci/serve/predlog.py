"""The prediction log: every answer the server gives, durable before the answer is sent.

One SQLite file in WAL mode. One writer thread owns the write connection and commits whatever is
queued when it wakes in one transaction (group commit): requests that arrive together share one
fsync. `rotate` moves old rows into Parquet files DVC can version; `read` gives both as one frame.

    with PredictionLog.open(path) as log:
        await log.write([record])          # returns once the record is committed
    rotate(path, out_dir, before=cutoff)   # safe while the server writes
    frame = read(path, out_dir, model="credit", since=start)

Seq numbers are never reused (AUTOINCREMENT), so a row is the same row wherever it is found: a
crash between a rotation's Parquet write and its delete leaves it in both places, and `read` keeps
one. Feedback (labels) is rotated the same way, into feedback-*.parquet: labels are training data,
so DVC should version them with the records they label, and the latest one wins at read time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from modelops_ci.errors import UserError
from modelops_ci.fsutil import write_bytes_atomic
from modelops_ci.serve.records import COLUMNS, Feedback, Record

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

BATCH_ROWS = 4096  # rows one transaction takes at most; a larger single append goes alone
BUSY_SECONDS = 30.0  # how long a write waits for a rotation's delete (or another writer) to commit
SQLITE_HEADER = b"SQLite format 3\x00"
FEEDBACK_COLUMNS = ("request_id", "row", "label", "time")
TABLE_COLUMNS = {"records": ("seq", *COLUMNS), "feedback": ("seq", *FEEDBACK_COLUMNS)}
SCHEMA = """
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT,
    role TEXT NOT NULL, served INTEGER NOT NULL CHECK (served IN (0, 1)), time REAL NOT NULL,
    latency_ms REAL NOT NULL, status INTEGER NOT NULL, error TEXT, features TEXT NOT NULL,
    prediction TEXT NOT NULL, score TEXT NOT NULL);
CREATE INDEX records_time ON records (time);
CREATE INDEX records_request ON records (request_id);
CREATE TABLE feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, row INTEGER NOT NULL,
    label TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX feedback_time ON feedback (time);
CREATE INDEX feedback_request ON feedback (request_id, row);
"""
# Literal statements, one set per table: nothing is ever spliced into SQL.
SQL = {
    "records": {
        "insert": "INSERT INTO records (request_id, model, version, role, served, time, latency_ms, status, error,"
                  " features, prediction, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "oldest": "SELECT seq, request_id, model, version, role, served, time, latency_ms, status, error, features,"
                  " prediction, score FROM records WHERE time < ? ORDER BY seq LIMIT ?",
        "delete": "DELETE FROM records WHERE seq BETWEEN ? AND ? AND time < ?",
        "select": "SELECT seq, request_id, model, version, role, served, time, latency_ms, status, error, features,"
                  " prediction, score FROM records"
                  " WHERE (?1 IS NULL OR model = ?1) AND time >= ?2 AND time < ?3 ORDER BY seq",
    },
    "feedback": {
        "insert": "INSERT INTO feedback (request_id, row, label, time) VALUES (?, ?, ?, ?)",
        "oldest": "SELECT seq, request_id, row, label, time FROM feedback WHERE time < ? ORDER BY seq LIMIT ?",
        "delete": "DELETE FROM feedback WHERE seq BETWEEN ? AND ? AND time < ?",
        "select": "SELECT seq, request_id, row, label, time FROM feedback",
    },
}
DTYPES = {"seq": "int64", "served": "bool", "time": "float64", "latency_ms": "float64", "status": "int64",
          "row": "int64"}


Survives = Literal["process", "power"]
# In WAL mode, NORMAL writes each commit to the WAL file before it returns and syncs the WAL only at
# checkpoints: a committed record outlives the server's process (SIGKILL, an OOM kill), not a power
# cut or a kernel crash. FULL also syncs the WAL at every commit, which outlives those too; group
# commit pays one fsync per batch, measured here at 1 to 3.6 ms, which one client waits for in full.
SYNC: dict[Survives, str] = {"process": "NORMAL", "power": "FULL"}


class LogCorrupt(UserError):
    """The log file is not a prediction log SQLite can read; it is kept as it is."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(f"{path}: {what}: the file was kept as it is for inspection; move it aside with its "
                         f"-wal and -shm files (e.g. `mv {path} {path}.bad`) to start a fresh log")


@dataclass
class _Pending:
    """One append waiting for the writer: its rows per table, and the future its caller waits on."""

    rows: dict[str, list[tuple[Any, ...]]]
    future: Future[None] = field(default_factory=Future)

    @property
    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


class PredictionLog:
    """The server's append-only log; one writer thread, group commit. Open it with `open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, inline: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection  # the writer's: waits up to BUSY_SECONDS for a lock
        # the caller's own (`write_now`), which never waits for a lock: a connection of its own
        # rather than the writer's busy timeout switched off and on again around each commit (two
        # statements: a commit after a model call took 228 µs with them, 193 µs without)
        self._inline = inline
        self._pending: deque[_Pending] = deque()
        self._wake = threading.Condition()
        # held by whoever commits: the writer, or a caller committing alone (`write_now`)
        self._committing = threading.Lock()
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name=f"predlog {path.name}", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, path: Path, *, trace: Callable[[str], None] | None = None,
             survives: Survives = "process") -> PredictionLog:
        """Open the log at `path`, creating it (and its folders) if there is none.

        A file that is not a prediction log, or fails SQLite's quick check, is refused with
        LogCorrupt and never written. `trace` is called with each SQL statement the writer runs.
        `survives`: what a committed record outlives (SYNC says what each costs)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        check(path)
        connection = _connect(path, check_same_thread=False, survives=survives)
        _create_tables(connection)
        inline = _connect(path, check_same_thread=False, survives=survives)
        inline.execute("PRAGMA busy_timeout = 0")  # set after its start, which may wait for a rotation
        for each in (connection, inline):
            each.set_trace_callback(trace)
        return cls(path, connection, inline)

    def append(self, records: Sequence[Record]) -> Future[None]:
        """Queue `records`; the future resolves once they are committed (or fails with SQLite's error).

        A future cancelled before the writer takes it is not written."""
        rows = [tuple(getattr(record, name) for name in COLUMNS) for record in records]
        return self._enqueue(_Pending({"records": rows}))

    def add_feedback(self, items: Sequence[Feedback]) -> Future[None]:
        """Queue labels, like `append`; the latest label of a (request_id, row) wins when read."""
        rows = [tuple(getattr(item, name) for name in FEEDBACK_COLUMNS) for item in items]
        return self._enqueue(_Pending({"feedback": rows}))

    async def write(self, records: Sequence[Record], *, alone: bool = False) -> None:
        """Append from asyncio and wait for the commit. Shielded: a request cancelled while it
        waits (its client went away) still has its record written. `alone`: the caller knows of no
        other write coming (one request in flight), so the records may be committed on its thread
        (`write_now`) rather than handed to the writer and back, two thread hand-offs."""
        import asyncio

        if alone and self.write_now(records):
            return
        await asyncio.shield(asyncio.wrap_future(self.append(records)))

    def write_now(self, records: Sequence[Record]) -> bool:
        """Commit `records` on this thread if the writer has nothing queued, is not committing, and
        the file is not locked by another connection (a rotation): it never waits, since its caller
        is the event loop. False, with nothing written, otherwise; raises what the commit raised."""
        if self._pending or self._closing or not self._committing.acquire(blocking=False):
            return False
        try:
            rows = [tuple(getattr(record, name) for name in COLUMNS) for record in records]
            error = self._commit([_Pending({"records": rows})], self._inline)
        finally:
            self._committing.release()
        if _locked(error):
            return False  # another connection writes: the writer waits for it, off the event loop
        if error is not None:
            raise error
        return True

    def close(self) -> None:
        """Write everything queued, then stop the writer and close the file."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._writer.join()
        self._connection.close()
        self._inline.close()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _enqueue(self, pending: _Pending) -> Future[None]:
        with self._wake:
            if self._closing:
                raise RuntimeError(f"{self.path}: the prediction log is closed")
            self._pending.append(pending)
            self._wake.notify()
        return pending.future

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._commit_isolated(batch)

    def _next_batch(self) -> list[_Pending] | None:
        """What is queued (up to BATCH_ROWS rows); None once closing and nothing is left."""
        with self._wake:
            while not self._pending and not self._closing:
                self._wake.wait()
            batch: list[_Pending] = []
            rows = 0
            while self._pending and (not batch or rows + self._pending[0].size <= BATCH_ROWS):
                pending = self._pending.popleft()
                if pending.future.set_running_or_notify_cancel():
                    batch.append(pending)
                    rows += pending.size
            if not batch and self._closing and not self._pending:
                return None
            return batch

    def _commit_isolated(self, batch: list[_Pending]) -> None:
        """Commit the batch; if it fails, commit each append alone, so that one bad record fails its
        own caller and not the requests that happened to share its transaction."""
        with self._committing:
            error = self._commit(batch, self._connection)
        if error is None:
            for pending in batch:
                pending.future.set_result(None)
            return
        if len(batch) == 1:
            batch[0].future.set_exception(error)
            return
        for pending in batch:
            self._commit_isolated([pending])

    def _commit(self, batch: list[_Pending], connection: sqlite3.Connection) -> Exception | None:
        """Commit `batch` in one transaction on `connection`; the caller holds `_committing`."""
        if not batch:
            return None
        try:
            with _transaction(connection):
                for table, statements in SQL.items():
                    rows = [row for pending in batch for row in pending.rows.get(table, ())]
                    if rows:
                        connection.executemany(statements["insert"], rows)
        except Exception as exc:  # the writer must outlive any failure, or every later caller would hang
            return exc
        return None


def _locked(error: Exception | None) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def check(path: Path) -> None:
    """Refuse (LogCorrupt) a file at `path` that is not a sound prediction log; open it read-only,
    so that nothing, not even SQLite's recovery, writes to a file that is refused."""
    if not path.exists():
        if _sidecar(path, "wal").exists():
            raise LogCorrupt(_sidecar(path, "wal"), "a write-ahead log without its database (was the log moved?)")
        return
    if path.stat().st_size == 0:  # SQLite makes the file before its first page; an empty one is new
        return
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise LogCorrupt(path, "not a SQLite database")
    try:
        with contextlib.closing(_connect_read_only(path)) as connection:
            _check_sound(path, connection)
    except sqlite3.OperationalError as exc:
        raise UserError(f"{path}: SQLite cannot open it ({exc}): check the file's permissions") from exc
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed" and the like
        raise LogCorrupt(path, f"SQLite cannot read it ({exc})") from exc


def _check_sound(path: Path, connection: sqlite3.Connection) -> None:
    problems = _quick_check(connection)
    if problems != ["ok"]:
        raise LogCorrupt(path, f"SQLite's quick_check fails ({problems[0]})")
    tables = _tables(connection)
    if tables and tables != TABLE_COLUMNS:
        found = "; ".join(f"{name}({', '.join(columns)})" for name, columns in sorted(tables.items()))
        raise LogCorrupt(path, f"its tables are not a prediction log's ({found})")


def _quick_check(connection: sqlite3.Connection) -> list[str]:
    """SQLite's quick_check: ["ok"], or what is wrong (it raises, not reports, on some damage)."""
    try:
        return [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        return [str(exc)]


def _tables(connection: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    names = [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {name: _columns(connection, name) for name in names}


def _columns(connection: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[0] for row in connection.execute("SELECT name FROM pragma_table_info(?)", (table,)))


def _create_tables(connection: sqlite3.Connection) -> None:
    with _transaction(connection):
        if not _tables(connection):
            for statement in SCHEMA.split(";"):
                connection.execute(statement)


def _connect(path: Path, *, check_same_thread: bool = True, survives: Survives = "process") -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None,
                                 check_same_thread=check_same_thread)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {SYNC[survives]}")
    return connection


def _connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS,
                           isolation_level=None)


def _sidecar(path: Path, kind: str) -> Path:
    return path.with_name(f"{path.name}-{kind}")


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


# Rotation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """Rows of one table moved to one Parquet file: seqs first..last whose time is before `before`."""

    table: str
    first: int
    last: int
    before: float
    file: Path


def rotate(path: Path, out_dir: Path, *, before: float | None = None, max_rows: int = 100_000) -> list[Path]:
    """Move the committed records (and labels) older than `before` (all if None) into Parquet files
    of at most `max_rows` rows in `out_dir`, then delete them from the log. Safe while the server
    writes; a crash midway leaves rows in both places, which `read` de-duplicates."""
    if not path.exists():
        raise UserError(f"{path}: no prediction log there: give the path the server logs to")
    check(path)
    cutoff = float("inf") if before is None else before
    written: list[Path] = []
    with contextlib.closing(_connect(path)) as connection:
        for table in TABLE_COLUMNS:
            while (chunk := _export(connection, table, out_dir, cutoff, max_rows)) is not None:
                _delete(connection, chunk)
                written.append(chunk.file)
    return written


def _export(connection: sqlite3.Connection, table: str, out_dir: Path, before: float,
            max_rows: int) -> _Chunk | None:
    """Write the oldest `max_rows` rows of `table` before `before` to a Parquet file, durably (file
    and folder synced); None when there are none."""
    columns = TABLE_COLUMNS[table]
    cursor = connection.execute(SQL[table]["oldest"], (before, max_rows))
    frame = _frame(cursor.fetchall(), columns)
    if frame.empty:
        return None
    first = int(frame["seq"].iloc[0])
    last = int(frame["seq"].iloc[-1])
    file = out_dir / f"{table}-{first}-{last}.parquet"
    _refuse_other_logs(table, out_dir, frame)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    write_bytes_atomic(file, buffer.getvalue())
    _sync_folder(out_dir)
    return _Chunk(table, first, last, before, file)


def _delete(connection: sqlite3.Connection, chunk: _Chunk) -> None:
    # Exactly the rows exported: new rows always get higher seqs, so none can slip into the range.
    with _transaction(connection):
        connection.execute(SQL[chunk.table]["delete"], (chunk.first, chunk.last, chunk.before))


def _sync_folder(folder: Path) -> None:
    """Make the rename that put a file in `folder` durable before its rows leave the log."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _refuse_other_logs(table: str, out_dir: Path, frame: pd.DataFrame) -> None:
    """Refuse to rotate beside files whose seqs this log has given to other rows (a log started
    afresh, rotating into the folder of the one it replaced): `read` would keep one of each."""
    import pandas as pd

    first = int(frame["seq"].iloc[0])
    last = int(frame["seq"].iloc[-1])
    overlapping = [file for file in _rotated_files(out_dir, table) if _overlaps(file, first, last)]
    if overlapping:
        _refuse_conflicts(pd.concat([frame, *[_read_parquet(file, table) for file in overlapping]]), out_dir)


def _overlaps(file: Path, first: int, last: int) -> bool:
    _, low, high = file.stem.rsplit("-", 2)
    return int(low) <= last and first <= int(high)


def _refuse_conflicts(frame: pd.DataFrame, where: Path) -> None:
    """Rows that share a seq must be the same row; else two logs were mixed."""
    twins = frame[frame.duplicated("seq", keep=False)]
    distinct = twins.drop_duplicates(["seq", "request_id", "time"])
    clashing = distinct[distinct.duplicated("seq")]
    if not clashing.empty:
        seq = int(clashing["seq"].iloc[0])
        raise UserError(f"{where}: two prediction logs give seq {seq} to different rows (a log started afresh "
                        "beside the rotated files of an older one?): rotate each log into a folder of its own")


# Reading --------------------------------------------------------------------------------------------


def read(path: Path | None, rotated: Path | None = None, *, model: str | None = None,
         since: float | None = None, until: float | None = None) -> pd.DataFrame:
    """The records in the log at `path` and the Parquet files in `rotated`, one row per record, sorted
    by seq: records.COLUMNS, "seq" and "label" (the JSON list of the request's labels, one per row,
    null where a row has none; None where no label is known yet). `since` <= time < `until`."""
    import pandas as pd

    window = _Window(model, -math.inf if since is None else since, math.inf if until is None else until)
    parts = [_read_log(path, "records", window.parameters()), *_read_rotated(rotated, "records", window.filters())]
    records = _deduplicated(pd.concat(parts, ignore_index=True), path or rotated)
    labels = _labels(path, rotated, set(records["request_id"]))
    pairs = zip(records["request_id"], records["prediction"], strict=True)
    records["label"] = pd.Series([_label_list(labels, request_id, prediction) for request_id, prediction in pairs],
                                 index=records.index, dtype=object)
    return records[[*COLUMNS, "seq", "label"]]


def read_feedback(path: Path | None, rotated: Path | None = None) -> pd.DataFrame:
    """Every label, the latest per (request_id, row) only: columns request_id, row, label, time, seq."""
    import pandas as pd

    parts = [_read_log(path, "feedback", ()), *_read_rotated(rotated, "feedback", None)]
    feedback = _deduplicated(pd.concat(parts, ignore_index=True), path or rotated)
    latest = feedback.sort_values(["time", "seq"]).drop_duplicates(["request_id", "row"], keep="last")
    return latest.sort_values("seq").reset_index(drop=True)


def logged_request_ids(path: Path | None, rotated: Path | None, wanted: set[str]) -> set[str]:
    """Which of `wanted` the log or its rotated files hold a record of."""
    found = set()
    if path is not None and path.exists():
        with contextlib.closing(_open_for_reading(path)) as connection:
            for request_id in wanted:
                hit = connection.execute("SELECT 1 FROM records WHERE request_id = ? LIMIT 1", (request_id,))
                if hit.fetchone() is not None:
                    found.add(request_id)
    missing = sorted(wanted - found)
    if not missing:
        return found
    for frame in _read_rotated(rotated, "records", [("request_id", "in", missing)]):
        found |= set(frame["request_id"])
    return found


@dataclass(frozen=True)
class _Window:
    """The records `read` keeps: one model's (or all), since <= time < until."""

    model: str | None
    since: float
    until: float

    def parameters(self) -> tuple[Any, ...]:
        return (self.model, self.since, self.until)

    def filters(self) -> list[tuple[str, str, Any]]:
        """The same, as pyarrow's filters."""
        bounds: list[tuple[str, str, Any]] = [("time", ">=", self.since), ("time", "<", self.until)]
        if self.model is None:
            return bounds
        return [("model", "==", self.model), *bounds]


def _read_log(path: Path | None, table: str, parameters: tuple[Any, ...]) -> pd.DataFrame:
    columns = TABLE_COLUMNS[table]
    if path is None or not path.exists():
        return _frame([], columns)
    with contextlib.closing(_open_for_reading(path)) as connection:
        try:
            rows = connection.execute(SQL[table]["select"], parameters).fetchall()
        except sqlite3.DatabaseError as exc:
            raise LogCorrupt(path, f"SQLite cannot read it ({exc})") from exc
    return _frame(rows, columns)


def _open_for_reading(path: Path) -> sqlite3.Connection:
    """A read-only connection: in WAL mode it never blocks the writer (nor the writer it)."""
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise LogCorrupt(path, "not a SQLite database")
    return _connect_read_only(path)


def _read_rotated(folder: Path | None, table: str, filters: list[tuple[str, str, Any]] | None) -> list[pd.DataFrame]:
    if folder is None:
        return []
    return [_read_parquet(file, table, filters) for file in _rotated_files(folder, table)]


def _rotated_files(folder: Path, table: str) -> list[Path]:
    return sorted(folder.glob(f"{table}-*-*.parquet"))


def _read_parquet(file: Path, table: str, filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_parquet(file, engine="pyarrow", filters=filters or None)
    except Exception as exc:  # pyarrow's errors have no common base
        raise UserError(f"{file}: not a readable Parquet file ({exc}): restore it with `dvc checkout`") from exc
    return _typed(frame[list(TABLE_COLUMNS[table])])


def _frame(rows: list[Any], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    return _typed(pd.DataFrame.from_records(rows, columns=list(columns)))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    types = {name: kind for name, kind in DTYPES.items() if name in frame.columns}
    typed = frame.astype(types)
    texts = [name for name in frame.columns if name not in DTYPES]
    for name in texts:
        column = typed[name].astype(object)
        typed[name] = column.where(column.notna(), None)
    return typed


def _deduplicated(frame: pd.DataFrame, where: Path | None) -> pd.DataFrame:
    _refuse_conflicts(frame, where or Path())
    unique = frame.drop_duplicates("seq").sort_values("seq", kind="stable")
    return unique.reset_index(drop=True)


def _labels(path: Path | None, rotated: Path | None, request_ids: set[str]) -> dict[str, dict[int, str]]:
    """The latest label of each row of the requests in `request_ids`: request_id -> row -> JSON label."""
    feedback = read_feedback(path, rotated)
    wanted = feedback[feedback["request_id"].isin(request_ids)]
    labels: dict[str, dict[int, str]] = {}
    for request_id, row, label in zip(wanted["request_id"], wanted["row"], wanted["label"], strict=True):
        labels.setdefault(request_id, {})[int(row)] = label
    return labels


def _label_list(labels: dict[str, dict[int, str]], request_id: str, prediction: str) -> str | None:
    rows = labels.get(request_id)
    if not rows:
        return None
    count = max(len(json.loads(prediction)) if prediction else 0, max(rows) + 1)
    return "[" + ", ".join(rows.get(row, "null") for row in range(count)) + "]"
