"""Shadow challengers: each scores copies of answered requests on its own thread, off the response path.

A shadow shares the champion's process and CPU, so what a copy costs the event loop is kept to a
list append: everything else (the frame, the model call, the records and their metrics) runs on
the shadow's own thread, in batches that gather copies for up to `max_wait_ms` (nobody waits for a
shadow's answer, and a call's fixed cost is most of what one row costs), and all of that thread's
CPU time is charged to a budget (serve/budget.py): at most `cpu_share` of what the rest of the
process spends. A shadow over its budget waits while its next batch grows; copies over `limit` in
flight are dropped and counted, never kept in memory.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from modelops_ci.numerics import one_thread
from modelops_ci.serve.batcher import Answer, Scorer, ScoringFailed, scoring_failed
from modelops_ci.serve.budget import IDLE_FLOOR, SHADOW_CPU_SHARE, CpuBudget
from modelops_ci.serve.metrics import Metrics
from modelops_ci.serve.records import Record
from modelops_ci.serve.signature import Row
from modelops_ci.serve.state import ServedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowBatching:
    """How a shadow gathers its copies and how much CPU it may take. A call waits `max_wait_ms`
    from the first copy it will take, or goes at `max_rows`: the credit model's shadow costs 45 µs
    a row in calls of 200 rows and 22 µs in calls of 1,000, each with its records. `limit`: copies
    waiting or being scored at once (~4 s of a 1,000 req/s stream), over which they are dropped."""

    max_rows: int = 1024
    max_wait_ms: float = 1000.0
    cpu_share: float = SHADOW_CPU_SHARE
    cpu_floor: float = IDLE_FLOOR
    limit: int = 4096


class Appender(Protocol):
    """The prediction log's non-blocking append (modelops_ci/serve/predlog.py), safe from any thread."""

    def append(self, records: Sequence[Record]) -> Future[None]: ...


@dataclass(frozen=True)
class Copy:
    """What the shadow's record needs of the request it copies."""

    request_id: str
    model: str
    time: float  # unix seconds when the request arrived
    features: str  # the rows as JSON, as the champion's record holds them
    rows: Sequence[Row]


class ShadowLane:
    """One shadow challenger's copies: gathered on the event loop, scored and logged on its thread."""

    def __init__(self, version: ServedVersion, log_: Appender, metrics: Metrics,
                 batching: ShadowBatching = ShadowBatching()) -> None:
        self.version = version
        self.batching = batching
        self.calls = 0
        self.in_flight = 0  # copies waiting or being scored
        self.held_for_budget = False  # the next call waits for the CPU budget
        self._log = log_
        self._metrics = metrics
        self._scorer = Scorer(version)
        self._pending: list[Copy] = []
        self._pending_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._call: asyncio.Future[float] | None = None  # the batch being scored
        self._stopping = False
        self._budget = CpuBudget(batching.cpu_share, batching.cpu_floor)
        self._spent = 0.0  # CPU seconds this shadow's thread has used, all calls
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"shadow-{version.name}-{version.version}")
        self._worker.submit(one_thread)

    @property
    def queued(self) -> int:
        """Copies waiting for the next call (not counting those being scored)."""
        return len(self._pending)

    def send(self, copy: Copy) -> None:
        """Queue a copy (on the event loop); its answer is logged, never returned."""
        if self.in_flight >= self.batching.limit:
            self._metrics.shadow_dropped.labels(self.version.name, self.version.version).inc()
            return
        self.in_flight += 1
        self._pending.append(copy)
        self._pending_rows += len(copy.rows)
        if self._call is not None or self._stopping:
            return  # the call that ends next schedules this one
        if self._pending_rows >= self.batching.max_rows:
            self._go_in(0.0)
        elif self._timer is None:
            self._go_in(self.batching.max_wait_ms / 1000)

    def _go_in(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._go)

    def _go(self) -> None:
        self._timer = None
        if self._call is not None or not self._pending:
            return
        wait = self._budget.wait(time.monotonic(), self._others())
        self.held_for_budget = wait > 0
        if wait > 0:
            self._go_in(wait)
            return
        self._start(self._taken())

    def _start(self, batch: list[Copy]) -> None:
        self.calls += 1
        self._call = asyncio.get_running_loop().run_in_executor(self._worker, self._score_and_log, batch)
        self._call.add_done_callback(lambda finished: self._scored(finished, len(batch)))

    async def drain(self) -> None:
        """Score and log every copy taken, now, whatever the budget: a server that stops loses no
        copy it took. The caller bounds the wait (a model may never return)."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._call is not None or self._pending:
            if self._call is None:
                self._start(self._taken())
            assert self._call is not None
            # `_scored` runs before this resumes (it was added first); shielded, a caller that
            # gives up does not cancel the call's bookkeeping
            await asyncio.wait([asyncio.shield(self._call)])

    def _taken(self) -> list[Copy]:
        count, rows = 1, len(self._pending[0].rows)  # at least one copy, however many rows it has
        while count < len(self._pending) and rows + len(self._pending[count].rows) <= self.batching.max_rows:
            rows += len(self._pending[count].rows)
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._pending_rows -= rows
        return batch

    def _scored(self, finished: asyncio.Future[float], copies: int) -> None:
        self._call = None
        self.in_flight -= copies
        if finished.cancelled():  # the server is stopping
            return
        cpu = 0.0
        error = finished.exception()
        if error is not None:  # a bug of ours, not the model's (that is a record): say so, go on
            log.error("shadow %s %s: copies not logged", self.version.name, self.version.version, exc_info=error)
        else:
            cpu = finished.result()
        self._spent += cpu
        self._budget.spent(cpu, time.monotonic(), self._others())
        if self._pending and not self._stopping:
            full = self._pending_rows >= self.batching.max_rows
            self._go_in(0.0 if full else self.batching.max_wait_ms / 1000)

    def _others(self) -> float:
        """The CPU seconds the rest of the process has used: what this shadow's budget earns from."""
        return time.process_time() - self._spent

    def _score_and_log(self, batch: list[Copy]) -> float:
        """On the shadow's thread: score the batch, log a record per copy, count them; the CPU
        seconds all of that took."""
        cpu = time.thread_time()
        started = time.perf_counter()
        rows = list(itertools.chain.from_iterable(copy.rows for copy in batch))
        try:
            records = _answered(batch, self.version.version, self._scorer.score(rows), started)
        except Exception as exc:
            records = _failed(batch, self.version, exc, started)
        self._log.append(records).add_done_callback(_unwritten)
        self._metrics.batch_rows.labels(self.version.name, self.version.version).observe(len(rows))
        self._metrics.answered_many(self.version.name, self.version.version, "shadow", records[0].status,
                                    [record.latency_ms / 1000 for record in records])
        return time.thread_time() - cpu


def _answered(batch: list[Copy], version: str, answer: Answer, started: float) -> list[Record]:
    # each record's latency is the model call's: the copy waited for a batch on purpose
    call_ms = (time.perf_counter() - started) * 1000
    records, start = [], 0
    for copy in batch:
        end = start + len(copy.rows)
        scores = "" if answer.scores is None else json.dumps(answer.scores[start:end])
        records.append(Record(copy.request_id, copy.model, version, "shadow", False, copy.time, call_ms, 200, None,
                              copy.features, json.dumps(answer.predictions[start:end]), scores))
        start = end
    return records


def _failed(batch: list[Copy], version: ServedVersion, exc: Exception, started: float) -> list[Record]:
    failed: ScoringFailed = scoring_failed(version, exc)
    log.warning("shadow %s %s: %s", version.name, version.version, failed, exc_info=exc)
    call_ms = (time.perf_counter() - started) * 1000
    return [Record(copy.request_id, copy.model, version.version, "shadow", False, copy.time, call_ms, 500,
                   str(failed), copy.features, "", "") for copy in batch]


def _unwritten(appended: Future[None]) -> None:
    error = appended.exception()
    if error is not None:  # the writer's thread: logging only
        log.error("the prediction log could not record %s", "shadow answers", exc_info=error)
