"""Serve one model file through `build_app` in a uvicorn process, for benchmarks/bench_serve.py.

    python benchmarks/serve_launcher.py --model M.skops --card M.json --log P.sqlite --port N [--shadow]

The model is loaded by `model_store.load` (sha256 and trusted types checked) and served as
`<name>` version v1; with `--shadow` a second load of the same file is the challenger v2 in shadow
mode at weight 100 (every request scored twice). The registry path (catalog, verified tags) is
left out: it runs once at start and is tested elsewhere. The prediction log is a real one
(`PredictionLog.open`, group commit, answer after commit).

Each answer carries two timing headers the benchmark reads, added by a pure ASGI wrapper (no
change to the app): `x-bench-app-ms`, the app's time from the request reaching it to the response
starting (parsing, routing, scoring, logging), and `x-bench-log-ms`, the part spent waiting for the
log to commit the answer's record. `--profile FILE` writes cProfile stats of the event loop's
thread (the scoring worker and the log writer are other threads) when uvicorn stops on SIGINT.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from modelops_ci import numerics  # noqa: E402 - the project root must be importable first

numerics.pin_portable_kernels()

from modelops_ci.serve.budget import SHADOW_CPU_SHARE  # noqa: E402
from modelops_ci.serve.records import Record  # noqa: E402

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_timings: contextvars.ContextVar[dict[str, float]] = contextvars.ContextVar("bench_timings")


class TimedLog:
    """The prediction log, with the time its caller waited for a served answer's commit noted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def append(self, records: Sequence[Record]) -> Future[None]:
        future: Future[None] = self.inner.append(records)
        return future

    async def write(self, records: Sequence[Record], *, alone: bool = False) -> None:
        started = time.perf_counter()
        try:
            await self.inner.write(records, alone=alone)
        finally:
            timings = _timings.get(None)
            if timings is not None and records and records[0].served:
                timings["log"] = timings.get("log", 0.0) + time.perf_counter() - started


def timed(app: ASGIApp) -> ASGIApp:
    """`app`, its answers carrying x-bench-app-ms and x-bench-log-ms."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        timings: dict[str, float] = {}
        _timings.set(timings)
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                log_ms = timings.get("log", 0.0) * 1000
                message["headers"] = [*message.get("headers", []), (b"x-bench-app-ms", f"{took:.4f}".encode()),
                                      (b"x-bench-log-ms", f"{log_ms:.4f}".encode())]
            await send(message)

        await app(scope, receive, timed_send)

    return wrapped


def served(model: Path, card: Path, name: str, shadow: bool) -> Any:
    """The serving state: `name` v1 as the champion, and with `shadow` a second copy as challenger."""
    from modelops_ci.ml.model_store import load
    from modelops_ci.serve.state import Route, Served, ServedVersion, ServingState

    trusted = json.loads(card.read_text(encoding="utf-8")).get("trusted_types", [])

    def version(label: str) -> ServedVersion:
        fitted, facts = load(model, card, extra_types=trusted)
        return ServedVersion(name, label, fitted, facts)

    challenger = version("v2") if shadow else None
    route = Route(name, version("v1"), challenger, "shadow", 100 if shadow else 0)
    return ServingState(Served("bench", {name: route}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--name", default="credit-risk")
    parser.add_argument("--log", type=Path, required=True, help="the prediction log (SQLite, made if missing)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--shadow", action="store_true", help="a shadow challenger at weight 100")
    parser.add_argument("--max-rows", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--shadow-cpu", type=float, default=SHADOW_CPU_SHARE,
                        help="the shadow's share of the CPU the rest of the server uses (serve --shadow-cpu)")
    parser.add_argument("--profile", type=Path, help="cProfile stats of the event loop's thread, written at exit")
    args = parser.parse_args()

    import cProfile

    import uvicorn

    from modelops_ci.commands.serve import open_connections
    from modelops_ci.serve.app import Settings, build_app
    from modelops_ci.serve.batcher import Batching
    from modelops_ci.serve.predlog import PredictionLog
    from modelops_ci.serve.shadow import ShadowBatching

    state = served(args.model, args.card, args.name, args.shadow)
    shadow = ShadowBatching(cpu_share=args.shadow_cpu)
    running: list[uvicorn.Server] = []  # as `modelops-ci serve` runs it: the app knows its connections
    settings = Settings(batching=Batching(max_rows=args.max_rows, max_wait_ms=args.max_wait_ms),
                        shadow_batching=shadow, connections=lambda: open_connections(running))
    profiler = cProfile.Profile() if args.profile else None
    with PredictionLog.open(args.log) as log:
        app = timed(build_app(state, TimedLog(log), settings))
        if profiler is not None:
            profiler.enable()
        running.append(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, workers=1,
                                                     log_level="warning", access_log=False, proxy_headers=False)))
        try:
            running[0].run()
        except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped on
            pass
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
