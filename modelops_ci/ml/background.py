"""A batched stage's MLflow logging in a process of its own.

Importing MLflow takes ~2 s, as long as the rest of a small run (one changed series: its fit,
pandas' and scikit-learn's imports). In a second process it is paid on another core while this one
fits, and the series' records are logged as they arrive. The stage waits for the logger at the end,
so nothing is lost: a logging failure is the stage's failure, with MLflow's message.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from modelops_ci.ml.tracking import Tracked

_DONE = "done"
WAIT_SECONDS = 600  # for the logger to finish after the last record (a slow tracking server)


class FamilyLogger:
    """Send records with `log_series`, the family's metrics with `log_family`; leave the `with` block
    to wait for every one of them to be logged."""

    def __init__(self, tracked: Tracked) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads/locks
        self._ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(tracked, theirs), daemon=True,
                                        name="modelops-mlflow")
        self._process.start()
        theirs.close()
        self._sent = False

    def log_series(self, record: dict[str, Any]) -> None:
        self._sent = True
        self._ours.send(("series", record))

    def log_family(self, metrics: dict[str, Any]) -> None:
        if self._sent:  # a family run without series that ran is no run: nothing was logged
            self._ours.send(("family", metrics))

    def __enter__(self) -> FamilyLogger:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if not self._sent:  # started ahead in case series would run; none did: no runs to log
            self._process.kill()
            self._process.join(timeout=10)
            return
        try:
            self._ours.send((_DONE, kind is None))
            answer = self._ours.recv() if self._ours.poll(WAIT_SECONDS) else ("error", "no answer", False)
        except (EOFError, OSError, BrokenPipeError):
            answer = ("error", f"the MLflow logger stopped (exit code {self._process.exitcode})", False)
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
        if kind is None and answer[0] != "ok":
            raise _failure(answer)


def _failure(answer: tuple[Any, ...]) -> Exception:
    _, message, user = answer
    if user:
        return UserError(message)
    return RuntimeError(f"MLflow logging failed: {message}")


def _serve(tracked: Tracked, pipe: Connection) -> None:
    """The logger: one FamilyRun, fed from the pipe until the stage says it is done, then its answer."""
    answer = _logged(tracked, pipe)
    try:
        pipe.send(answer)
    finally:
        # Everything is committed: skip the interpreter's teardown of MLflow's modules (~0.7 s the
        # stage would wait for in `join`).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _logged(tracked: Tracked, pipe: Connection) -> tuple[Any, ...]:
    from modelops_ci.errors import ModelopsError
    from modelops_ci.ml.tracking import FamilyRun

    _commit_without_waiting_for_the_disk()
    try:
        # MLflow's ~2 s import and the store's set-up, while the stage reads the panel and keys and
        # fits the series: the first record is logged as soon as it arrives.
        with FamilyRun(tracked) as run:
            what, payload = pipe.recv()
            while True:
                if what == "series":
                    run.log_series(payload)
                elif what == "family":
                    run.log_family(payload)
                else:
                    if not payload:
                        raise _StageFailed
                    break
                what, payload = pipe.recv()
    except _StageFailed:
        pass
    except ModelopsError as exc:
        return ("error", str(exc), True)
    except Exception:  # reported to the stage, which turns it into its own failure
        return ("error", traceback.format_exc(limit=5), False)
    return ("ok",)


def _commit_without_waiting_for_the_disk() -> None:
    """SQLite stores (the default) in WAL mode with synchronous=NORMAL, for this process's
    connections only: a commit no longer waits for the disk (each child run is ~7 commits), and
    still survives a crash of the process; only a power loss can take the last ones. The runs are
    a record beside DVC and git, which hold the models and verdicts."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def pragmas(connection: object, _: object) -> None:
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", pragmas)


class _StageFailed(Exception):
    """The stage stopped: the parent run ends FAILED (FamilyRun's exit)."""
