"""Adaptive micro-batching: concurrent requests to one served version are scored in one model call.

A model call costs mostly its fixed part (the example's pipeline: 4.7 ms for one row, 6.3 ms for
200), so one call per request caps a server at a few hundred answers a second. Each version has
one worker thread; requests queue while it scores, and the next call takes every queued request
(up to `max_rows` rows) and splits the answers back. Before a call it waits, at most `max_wait_ms`,
for as many requests as the last call held plus those that arrived while it scored: that is how
many clients are active, and waiting for them all merges the groups that steady clients otherwise
fall into (16 clients in two groups of 8 take two calls' fixed cost where one would do). An idle
model never waits: a lone request, or the first after a pause, goes at once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from modelops_ci.errors import ModelopsError
from modelops_ci.numerics import one_thread
from modelops_ci.serve.signature import Row, Signature, frame
from modelops_ci.serve.state import ServedVersion

MAX_BATCH_ROWS = 256
MAX_WAIT_MS = 2.0


@dataclass(frozen=True)
class Batching:
    """How long and how large a batch may grow."""

    max_rows: int = MAX_BATCH_ROWS
    max_wait_ms: float = MAX_WAIT_MS


@dataclass(frozen=True)
class Answer:
    """One request's share of a batch: a prediction per row and, for a classifier, the positive
    class's probability per row."""

    predictions: list[Any]
    scores: list[float] | None
    batch_ms: float = 0.0  # how long the model call that scored it took


class ScoringFailed(ModelopsError):
    """The model raised while scoring a batch: every request in it fails (the traceback is logged)."""


@dataclass
class _Job:
    rows: Sequence[Row]
    done: asyncio.Future[Answer]


class Batcher:
    """Scores the requests for one served version, batched, on its own worker thread."""

    def __init__(self, version: ServedVersion, batching: Batching = Batching(),
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.version = version
        self.signature = Signature.of(version.card)
        self.calls = 0  # model calls made: what batching saves is visible here
        self.batching = batching
        self._batching = batching
        self._on_batch = on_batch
        self._queue: deque[_Job] = deque()
        self._queued_rows = 0
        self._draining: asyncio.Task[None] | None = None
        self._expected = 1  # how many requests a new call waits for (at most max_wait_ms)
        self._arrived_in_call = 0  # requests queued while the current call scores
        self._last_call_end = 0.0
        self._wake: asyncio.Future[None] | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"score-{version.name}-{version.version}")
        self._worker.submit(one_thread)  # finds the thread pools (~40 ms) before the first request does
        self._model = Scorer(version)

    @property
    def queued(self) -> int:
        """Requests waiting for the next model call (not counting the one being scored)."""
        return len(self._queue)

    async def score(self, rows: Sequence[Row], *, alone: bool = False) -> Answer:
        """This request's answer, from the next batch the worker scores; or, `alone` (its client is
        the only one connected) with nothing queued or scoring, from a call on this thread."""
        if alone and self._draining is None and not self._queue:
            return self._scored_here(rows)
        return await self.enqueue(rows)

    def _scored_here(self, rows: Sequence[Row]) -> Answer:
        """The model call on the event loop's thread. With one client connected nobody else can be
        waiting for the loop, and the call saves the hand-off to the worker and back (~0.2 ms) and
        the worker thread's cold wake-up; with more, requests batch on the worker as before."""
        self.calls += 1
        started = time.perf_counter()
        try:
            answer = self._model.score(rows)
        except Exception as exc:
            raise scoring_failed(self.version, exc) from exc
        finally:
            self._last_call_end = asyncio.get_running_loop().time()
            self._expected = 1
        if self._on_batch is not None:
            self._on_batch(len(rows))
        return Answer(answer.predictions, answer.scores, (time.perf_counter() - started) * 1000)

    def enqueue(self, rows: Sequence[Row]) -> asyncio.Future[Answer]:
        """Queue `rows` for the next batch; the future holds their answer (or ScoringFailed)."""
        loop = asyncio.get_running_loop()
        job = _Job(rows, loop.create_future())
        self._queue.append(job)
        self._queued_rows += len(rows)
        self._arrived_in_call += 1
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        if self._draining is None:
            if loop.time() - self._last_call_end > self._batching.max_wait_ms / 1000:
                self._expected = 1  # idle for a while: nobody else is coming, go at once
            self._draining = loop.create_task(self._drain())
        return job.done

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._gathered()
                await self._run(self._taken())
        finally:
            self._draining = None

    async def _gathered(self) -> None:
        """Wait until as many requests as the last call held are queued, the batch is full, or
        `max_wait_ms` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._batching.max_wait_ms / 1000
        while self._queued_rows < self._batching.max_rows and len(self._queue) < self._expected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake = loop.create_future()
            await asyncio.wait({self._wake}, timeout=remaining)
            self._wake = None

    def _taken(self) -> list[_Job]:
        batch = [self._queue.popleft()]  # at least one request, however many rows it has
        rows = len(batch[0].rows)
        while self._queue and rows + len(self._queue[0].rows) <= self._batching.max_rows:
            job = self._queue.popleft()
            rows += len(job.rows)
            batch.append(job)
        self._queued_rows -= rows
        return batch

    async def _run(self, batch: list[_Job]) -> None:
        rows = list(itertools.chain.from_iterable(job.rows for job in batch))
        self._arrived_in_call = 0
        self.calls += 1
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            answer = await loop.run_in_executor(self._worker, self._model.score, rows)
        except Exception as exc:
            failed = scoring_failed(self.version, exc)
            for job in batch:
                _settle(job, failed)
            return
        finally:
            self._last_call_end = loop.time()
            self._expected = len(batch) + self._arrived_in_call
        if self._on_batch is not None:
            self._on_batch(len(rows))
        _split(batch, answer, (time.perf_counter() - started) * 1000)


def scoring_failed(version: ServedVersion, exc: Exception) -> ScoringFailed:
    """What every request of a batch the model raised on gets (`exc`, the traceback, is its cause)."""
    failed = ScoringFailed(f"model {version.name} {version.version} failed to score: {type(exc).__name__}")
    failed.__cause__ = exc
    return failed


def _split(batch: list[_Job], answer: Answer, batch_ms: float) -> None:
    start = 0
    for job in batch:
        end = start + len(job.rows)
        scores = None if answer.scores is None else answer.scores[start:end]
        _settle(job, Answer(answer.predictions[start:end], scores, batch_ms))
        start = end


def _settle(job: _Job, outcome: Answer | BaseException) -> None:
    if job.done.done():  # its request was cancelled (the client went away)
        return
    if isinstance(outcome, BaseException):
        job.done.set_exception(outcome)
    else:
        job.done.set_result(outcome)


class Scorer:
    """One model call for a batch of rows: predictions and, for a classifier, positive-class scores.
    A pipeline's preparation (the costly pandas part) runs once for both."""

    def __init__(self, version: ServedVersion) -> None:
        self.signature = Signature.of(version.card)
        self.classifier = version.card.get("task") == "classification" and hasattr(version.model, "predict_proba")
        self.prepare, self.final = _split_pipeline(version.model)
        self.positive = _positive_column(self.final, version.card) if self.classifier else None
        self.one_pass = self.positive is not None and _labels_from_probabilities(self.final)

    def score(self, rows: Sequence[Row]) -> Answer:
        data = frame(rows, self.signature)
        one_thread()
        prepared = data if self.prepare is None else self.prepare.transform(data)
        if self.one_pass:
            probabilities = self.final.predict_proba(prepared)
            predictions = _labels(self.final, prepared, probabilities)
            scores = probabilities[:, self.positive]
        else:
            predictions = self.final.predict(prepared)
            scores = self.final.predict_proba(prepared)[:, self.positive] if self.positive is not None else None
        return Answer(_plain(predictions), None if scores is None else _plain(scores))


# Two classes' probabilities closer than this are a tie to `_labels`: their order may differ from
# the order of the raw scores `predict` compares (rounding in the link), so `predict` decides.
TIE = 1e-9


def _labels_from_probabilities(model: Any) -> bool:
    """Whether `predict` of `model` is the class of highest probability (a tie aside): true of a
    HistGradientBoostingClassifier, whose predict and predict_proba each sum every tree, so reading
    the labels off the probabilities saves a second pass over the trees (~15% of a call here)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return type(model) is HistGradientBoostingClassifier


def _labels(model: Any, prepared: Any, probabilities: Any) -> Any:
    """`model.predict(prepared)`, read off its probabilities: the most probable class, and
    `predict` itself for rows whose two most probable classes are within TIE."""
    import numpy as np

    labels = model.classes_[np.argmax(probabilities, axis=1)]
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    tied = top_two[:, 1] - top_two[:, 0] <= TIE
    if tied.any():
        rows = prepared.iloc[tied] if hasattr(prepared, "iloc") else prepared[tied]
        labels[tied] = model.predict(rows)
    return labels


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    """(the preparing steps, the estimator) of a scikit-learn Pipeline; (None, model) otherwise."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[:-1], model.steps[-1][1]
    return None, model


def _positive_column(model: Any, card: Any) -> int | None:
    """Which column of predict_proba is the card's positive class: the class named so, or 1 when
    the model learned the target as 0/1 (the credit example: 1 is "bad")."""
    classes = [str(c) for c in getattr(model, "classes_", ())]
    for wanted in (str(card.get("positive")), "1", "True"):
        if wanted in classes:
            return classes.index(wanted)
    return None


def _plain(values: Any) -> list[Any]:
    """JSON-ready values: numpy scalars as Python ones, NaN or infinity as null."""
    import numpy as np

    items: list[Any] = np.asarray(values).tolist()
    return [None if isinstance(v, float) and not np.isfinite(v) else v for v in items]
