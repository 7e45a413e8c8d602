"""Who scores for each version being served: a batcher per version, and a shadow lane per shadow
challenger (which may also be asked by name, through its batcher).

A version kept across a reload (the same loaded object) keeps its batcher and, if it is still a
shadow with the same settings, its lane. A request takes its lanes with its state, so it finishes
on them even after a reload; a dropped lane still scores the copies it holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelops_ci.serve.batcher import Batcher, Batching
from modelops_ci.serve.metrics import Metrics
from modelops_ci.serve.shadow import Appender, ShadowBatching, ShadowLane
from modelops_ci.serve.state import Served, ServedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scorers:
    """One served state's batchers and shadow lanes, keyed by `id(version)`."""

    batchers: dict[int, Batcher]
    shadows: dict[int, ShadowLane]


class Lanes:
    """The scorers of the state being served, made again only for what a reload changed."""

    def __init__(self, log_: Appender, metrics: Metrics, batching: Batching, shadow_batching: ShadowBatching) -> None:
        self._log = log_
        self._metrics = metrics
        self._batching = batching
        self._shadow_batching = shadow_batching
        self._served: Served | None = None
        self._scorers = Scorers({}, {})
        self._lanes: list[ShadowLane] = []  # every shadow lane made, those a reload dropped too

    def of(self, served: Served) -> Scorers:
        if served is not self._served:
            old = self._scorers
            shadows = [r.challenger for r in served.routes.values() if r.mode == "shadow" and r.challenger]
            self._scorers = Scorers(
                {id(v): old.batchers.get(id(v)) or self._batcher(v)
                 for v in served.versions if not v.decides},  # a decision model solves, unbatched
                {id(v): old.shadows.get(id(v)) or self._lane(v) for v in shadows if not v.decides})
            self._served = served
        return self._scorers

    async def drain(self, seconds: float) -> None:
        """Score and log the copies every shadow lane holds, for at most `seconds` (the server is
        stopping; a shadow whose model does not return is left, and said so)."""
        busy = [lane for lane in self._lanes if lane.in_flight]
        if not busy:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(lane.drain() for lane in busy)), seconds)
        except TimeoutError:
            left = sum(lane.in_flight for lane in busy)
            log.warning("stopping: %d shadow copies not scored within %.0f s, not logged", left, seconds)

    def _lane(self, version: ServedVersion) -> ShadowLane:
        lane = ShadowLane(version, self._log, self._metrics, self._shadow_batching)
        self._lanes.append(lane)
        return lane

    def _batcher(self, version: ServedVersion) -> Batcher:
        return Batcher(version, self._batching, self._observer(version))

    def _observer(self, version: ServedVersion) -> Callable[[int], None]:
        rows_per_call = self._metrics.batch_rows.labels(version.name, version.version)
        return rows_per_call.observe
