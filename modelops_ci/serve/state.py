"""What the server answers from, and how it changes: the loaded versions of each model, swapped whole.

A request reads `ServingState.current` once, as it starts, and finishes on that `Served` even if a
reload swaps in another meanwhile (nothing in flight is dropped). `reload` runs the loader (which
verifies and loads models: slow) in a worker thread and swaps only when it succeeds; a loader that
refuses (a `ModelopsError`) leaves the old state serving and its reason in `last`, which /readyz shows.
`watch` polls the deployment file and reloads when its bytes change (a new commit pulled).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_ci.errors import ModelopsError
from modelops_ci.spec.deployment import Mode

log = logging.getLogger(__name__)
Loader = Callable[[], "Served"]


@dataclass(frozen=True, eq=False)
class ServedVersion:
    """One loaded, verified version of a model: the fitted estimator and its card (task, numeric,
    categorical, positive, target, sha256). Compared by identity: two loads are two versions."""

    name: str
    version: str
    model: Any
    card: Mapping[str, Any]

    @property
    def decides(self) -> bool:
        """A decision model (task: optimize): it solves a posted scenario, it does not predict."""
        return self.card.get("task") == "optimize"


@dataclass(frozen=True)
class Route:
    """How one model's requests are answered: by the champion, with the challenger taking a sticky
    `weight` percent of them (canary) or scoring a copy of them (shadow)."""

    name: str
    champion: ServedVersion | None
    challenger: ServedVersion | None
    mode: Mode = "canary"
    weight: int = 0

    @property
    def versions(self) -> tuple[ServedVersion, ...]:
        return tuple(v for v in (self.champion, self.challenger) if v is not None)


@dataclass(frozen=True)
class Served:
    """Everything the server answers from: a stage's routes, and what kept any named version from
    loading (then not `ready`)."""

    stage: str
    routes: dict[str, Route]
    problems: tuple[str, ...] = ()
    ready: bool = True

    @property
    def versions(self) -> tuple[ServedVersion, ...]:
        return tuple(v for route in self.routes.values() for v in route.versions)


@dataclass(frozen=True)
class Outcome:
    """How the last reload went: `error` is None when it swapped in a new state."""

    time: float
    error: str | None = None


@dataclass
class ServingState:
    """The current `Served`, swapped atomically by `reload`; one reload at a time."""

    current: Served
    last: Outcome | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def reload(self, load: Loader) -> Outcome:
        """Load a new state off the event loop and swap it in; on a `ModelopsError` keep the old one
        and remember why."""
        async with self._lock:
            try:
                served = await asyncio.to_thread(load)
            except ModelopsError as exc:
                self.last = Outcome(time.time(), error=str(exc))
                log.warning("reload refused, still serving the previous versions: %s", exc)
                return self.last
            self.current = served
            self.last = Outcome(time.time())
            log.info("reloaded stage %s: %s", served.stage, _described(served))
            return self.last

    async def watch(self, fingerprint: Callable[[], str | None], load: Loader, seen: str | None,
                    poll: float = 1.0) -> None:
        """Reload whenever `fingerprint()` changes from `seen` (what the current state was loaded
        from), checked every `poll` seconds; runs until cancelled."""
        while True:
            await asyncio.sleep(poll)
            now = await asyncio.to_thread(fingerprint)
            if now != seen:
                seen = now
                await self._reload_or_report(load)

    async def _reload_or_report(self, load: Loader) -> None:
        # A loader's bug must not end the watching: the old state serves on, and the log has the traceback.
        try:
            await self.reload(load)
        except Exception as exc:
            log.exception("reload failed with an internal error, still serving the previous versions")
            self.last = Outcome(time.time(), error=f"internal error while loading: {exc!r}")


def digest(path: Path) -> str | None:
    """The sha256 of the file's bytes; None while it is missing or unreadable (mid-checkout)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _described(served: Served) -> str:
    return ", ".join(f"{v.name} {v.version}" for v in served.versions) or "no model"
