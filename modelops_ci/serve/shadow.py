"""Shadow copies: a challenger scores copies of answered requests off the response path.

A copy costs the champion as little as it can, since it shares the champion's process (and GIL):
no task of its own, only a place in the shadow's batcher, which waits for many copies before it
calls the model (SHADOW_BATCHING); the answers of one call are logged in one append and counted
once per version. Copies in flight are bounded; over the bound they are dropped and counted, never
kept in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from modelops_ci.serve.batcher import Answer, Batcher, ScoringFailed
from modelops_ci.serve.metrics import Metrics
from modelops_ci.serve.records import Record
from modelops_ci.serve.signature import Row

log = logging.getLogger(__name__)


class Appender(Protocol):
    """The prediction log's non-blocking append (modelops_ci/serve/predlog.py)."""

    def append(self, records: Sequence[Record]) -> Future[None]: ...


@dataclass(frozen=True)
class Copy:
    """What the shadow's record needs of the request it copies."""

    request_id: str
    model: str
    time: float  # unix seconds when the request arrived
    features: str  # the rows as JSON, as the champion's record holds them


class Shadows:
    """The copies sent to shadow challengers, their records and their metrics."""

    def __init__(self, log_: Appender, metrics: Metrics, limit: int) -> None:
        self._log = log_
        self._metrics = metrics
        self._limit = limit
        self.in_flight = 0  # copies queued or being scored
        self._outbox: list[Record] = []

    def send(self, copy: Copy, batcher: Batcher, rows: Sequence[Row]) -> None:
        """Queue `rows` for the shadow `batcher`; its answer is logged, never returned."""
        version = batcher.version
        if self.in_flight >= self._limit:
            self._metrics.shadow_dropped.labels(version.name, version.version).inc()
            return
        self.in_flight += 1
        sent = time.perf_counter()
        answer = batcher.enqueue(rows)
        answer.add_done_callback(lambda done: self._scored(copy, version.version, sent, done))

    def _scored(self, copy: Copy, version: str, sent: float, done: asyncio.Future[Answer]) -> None:
        self.in_flight -= 1
        if done.cancelled():  # the server is stopping
            return
        self._outbox.append(_record(copy, version, sent, done))
        if len(self._outbox) == 1:  # the first of this batch's answers: log them all once they are in
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        records, self._outbox = self._outbox, []
        self._log.append(records).add_done_callback(_unwritten)
        # one batch's records share model, version and status
        for (model, version, status), same in groupby(records, key=lambda r: (r.model, r.version, r.status)):
            self._metrics.answered_many(model, version or "", "shadow", status, [r.latency_ms / 1000 for r in same])


def _record(copy: Copy, version: str, sent: float, done: asyncio.Future[Answer]) -> Record:
    error = done.exception()
    if error is not None:
        log.warning("request %s: the shadow %s", copy.request_id, error, exc_info=error.__cause__)
        message = str(error) if isinstance(error, ScoringFailed) else f"the shadow failed: {type(error).__name__}"
        waited = (time.perf_counter() - sent) * 1000
        return Record(copy.request_id, copy.model, version, "shadow", False, copy.time, waited, 500, message,
                      copy.features, "", "")
    answer = done.result()
    scores = "" if answer.scores is None else json.dumps(answer.scores)
    # its latency is its model call's: the copy waited for a batch on purpose (SHADOW_BATCHING)
    return Record(copy.request_id, copy.model, version, "shadow", False, copy.time, answer.batch_ms, 200, None,
                  copy.features, json.dumps(answer.predictions), scores)


def _unwritten(appended: Future[None]) -> None:
    error = appended.exception()
    if error is not None:  # the writer's thread: logging only
        log.error("the prediction log could not record %s", "shadow answers", exc_info=error)
