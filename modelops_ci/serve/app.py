"""The ASGI app: predict, health, readiness and metrics, answering from a `ServingState`.

    POST /v1/models/{name}/predict                   the route's version answers (canary, shadow)
    POST /v1/models/{name}/versions/{version}/predict  that version answers (champion or challenger)
    POST /v1/models/{name}/solve                     a decision model solves the posted scenario
    POST /v1/models/{name}/versions/{version}/solve    that version solves it
    GET  /healthz   the process is alive
    GET  /readyz    200 when every version the deployment names is loaded and verified, else 503 and why
    GET  /metrics   Prometheus text format

Every answer and every refusal is written to the prediction log before the response is sent (the
log commits requests that arrive together in one transaction); when the log cannot record it, the
caller gets a 503 and no prediction. A request takes the state and its batchers once, as it starts:
a reload meanwhile does not touch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from modelops_ci.serve import router
from modelops_ci.serve.batcher import Answer, Batcher, Batching, ScoringFailed
from modelops_ci.serve.lanes import Lanes, Scorers
from modelops_ci.serve.metrics import CONTENT_TYPE, Metrics
from modelops_ci.serve.records import Feedback, Record, Role
from modelops_ci.serve.shadow import Copy, ShadowBatching
from modelops_ci.serve.signature import BadRequest, Limits, Row, check_content_type, check_length, rows_of, too_large
from modelops_ci.serve.state import Loader, Served, ServedVersion, ServingState

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)


class PredictionLog(Protocol):
    """Where answers go before they are sent (modelops_ci/serve/predlog.py: group commit)."""

    async def write(self, records: Sequence[Record], *, alone: bool = False) -> None: ...

    def append(self, records: Sequence[Record]) -> Future[None]: ...

    def add_feedback(self, items: Sequence[Feedback]) -> Future[None]: ...


@dataclass(frozen=True)
class Settings:
    """How the app batches, what it accepts, and which deployment file it watches for changes."""

    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    shadow_batching: ShadowBatching = field(default_factory=ShadowBatching)
    # what the served state was loaded from (the deployment file, the registry's tags), as a digest:
    # a change reloads with `load`
    fingerprint: Callable[[], str | None] | None = None
    load: Loader | None = None
    poll: float = 1.0  # seconds between looks at `fingerprint`
    # how long a stopping server may take to score and log the shadow copies it holds
    shadow_drain_seconds: float = 10.0
    # how many clients are connected (the server's open connections); None: unknown, assume many
    connections: Callable[[], int] | None = None


@dataclass(frozen=True)
class _Request:
    """What is known of a predict request once it arrived."""

    id: str
    model: str
    time: float  # unix seconds
    started: float  # perf_counter


def build_app(state: ServingState, log_: PredictionLog, settings: Settings | None = None) -> Starlette:
    """The Starlette app serving `state`, logging to `log_`."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    server = _Server(state, log_, settings or Settings())
    routes = [
        Route("/v1/models/{name}/predict", server.predict, methods=["POST"]),
        Route("/v1/models/{name}/versions/{version}/predict", server.predict, methods=["POST"]),
        Route("/v1/models/{name}/solve", server.solve, methods=["POST"]),
        Route("/v1/models/{name}/versions/{version}/solve", server.solve, methods=["POST"]),
        Route("/v1/feedback", server.feedback, methods=["POST"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/readyz", server.readyz, methods=["GET"]),
        Route("/metrics", server.metrics_text, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=server.lifespan,
                    exception_handlers={HTTPException: server.http_error, Exception: server.internal_error})
    app.state.server = server
    return app


class _Server:
    def __init__(self, state: ServingState, log_: PredictionLog, settings: Settings) -> None:
        self.state = state
        self.log = log_
        self.settings = settings
        self.metrics = Metrics.create()
        self.lanes = Lanes(log_, self.metrics, settings.batching, settings.shadow_batching)
        # decision models solve one scenario at a time, off the event loop (a solve is seconds of CPU)
        self.solving = ThreadPoolExecutor(1, thread_name_prefix="solve")
        self.in_flight = 0  # requests between arrival and their answer's log record

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.lanes.of(self.state.current)  # start the workers before the first request
        # The loaded models and libraries stay for the process's life: kept out of the cycle
        # collector's scans, which otherwise walk them all at every full collection (a p99 pause).
        gc.freeze()
        watcher = None
        fingerprint, load = self.settings.fingerprint, self.settings.load
        if fingerprint is not None and load is not None:
            # what it is now: the state being served was loaded from it
            watcher = asyncio.create_task(self.state.watch(fingerprint, load, fingerprint(), self.settings.poll))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            # every answer was sent (uvicorn finishes them before this): the shadows' copies are left
            await self.lanes.drain(self.settings.shadow_drain_seconds)

    async def predict(self, request: Request) -> Response:
        self.in_flight += 1
        try:
            return await self._predict(request)
        finally:
            self.in_flight -= 1

    async def _predict(self, request: Request) -> Response:
        arrived = _Request(router.request_id(request.headers.get(router.REQUEST_ID_HEADER)),
                           request.path_params["name"], time.time(), time.perf_counter())
        served = self.state.current
        scorers = self.lanes.of(served)
        try:
            choice = _chosen(served, request, arrived)
            if choice.answer.decides:
                raise BadRequest(400, f"'{arrived.model}' is a decision model: POST one scenario's rows to "
                                      f"/v1/models/{arrived.model}/solve")
            batcher = scorers.batchers[id(choice.answer)]
            rows = await _rows(request, batcher, self.settings.limits)
        except BadRequest as exc:
            return await self._refused(arrived, exc, known=arrived.model in served.routes)
        return await self._answered(arrived, choice, batcher, rows, scorers)

    async def solve(self, request: Request) -> Response:
        """One scenario solved by the decision model's routed version; logged like an answer."""
        arrived = _Request(router.request_id(request.headers.get(router.REQUEST_ID_HEADER)),
                           request.path_params["name"], time.time(), time.perf_counter())
        served = self.state.current
        try:
            choice = _chosen(served, request, arrived)
            if not choice.answer.decides:
                raise BadRequest(400, f"'{arrived.model}' is not a decision model: POST its rows to "
                                      f"/v1/models/{arrived.model}/predict")
            check_content_type(request.headers.get("content-type"))
            check_length(request.headers.get("content-length"), self.settings.limits)
            rows = rows_of(await _body(request, self.settings.limits), choice.answer.model.signature,
                           self.settings.limits)
        except BadRequest as exc:
            return await self._refused(arrived, exc, known=arrived.model in served.routes)
        version = choice.answer
        features = json.dumps(rows)
        started = time.perf_counter()
        try:
            result = await asyncio.wrap_future(self.solving.submit(version.model.solve, arrived.id, rows))
        except Exception as exc:  # the solver's own failure: a 500, logged, never a traceback to the caller
            log.error("request %s: the solver failed", arrived.id, exc_info=exc)
            record = _record(arrived, version.version, choice.role, 500, f"the solver failed: {exc}", features)
            return await self._sent(record, {"error": f"the solver failed (request {arrived.id} is logged)"})
        refused = result["status"] == "error"  # the formulation refused this scenario's data
        record = _record(arrived, version.version, choice.role, 422 if refused else 200,
                         result.get("error") if refused else None, features)
        record = replace(record, prediction=json.dumps(result))
        body = {"model": arrived.model, "version": version.version, "result": result}
        seconds = time.perf_counter() - started
        return await self._sent(record, body, timing=f"solve;dur={seconds * 1000:.3f}")

    def _one_client(self) -> bool:
        """One client connected and this its only request: nobody else can be waiting for the loop."""
        connections = self.settings.connections
        return connections is not None and self.in_flight == 1 and connections() == 1

    async def _answered(self, arrived: _Request, choice: router.Choice, batcher: Batcher, rows: list[Row],
                        scorers: Scorers) -> Response:
        version = choice.answer.version
        try:
            answer = await batcher.score(rows, alone=self._one_client())
        except ScoringFailed as exc:
            log.error("request %s: %s", arrived.id, exc, exc_info=exc.__cause__)
            record = _record(arrived, version, choice.role, 500, str(exc), json.dumps(rows))
            return await self._sent(record, {"error": f"{exc} (request {arrived.id} is logged)"})
        features = json.dumps(rows)
        if choice.shadow is not None:
            scorers.shadows[id(choice.shadow)].send(Copy(arrived.id, arrived.model, arrived.time, features, rows))
        record = _record(arrived, version, choice.role, 200, None, features, answer)
        body = {"model": arrived.model, "version": version, "predictions": answer.predictions,
                "scores": answer.scores}
        # the W3C Server-Timing header: what of the answer's time the model call took
        return await self._sent(record, body, timing=f"model;dur={answer.batch_ms:.3f}")

    async def _refused(self, arrived: _Request, exc: BadRequest, known: bool) -> Response:
        # A model name nobody serves is not a label: anyone could fill the metrics with them.
        record = _record(arrived, None, "none", exc.status, str(exc), "")
        return await self._sent(record, {"error": str(exc)}, label=arrived.model if known else "")

    async def _sent(self, record: Record, body: dict[str, Any], label: str | None = None,
                    timing: str | None = None) -> Response:
        """Log `record`, then send `body` (with the request id and any Server-Timing) — or a 503 when
        the log failed."""
        from starlette.responses import Response

        status = record.status
        try:
            # one request in flight: its record is committed on this thread, no hand-off to the
            # writer and back (~0.1-0.2 ms at one client); with more, the writer's group commit
            await self.log.write([record], alone=self.in_flight <= 1)
        except Exception:
            log.exception("request %s: the prediction log could not record the answer", record.request_id)
            status = 503
            body = {"error": "the prediction log could not record the answer: retry later"}
        self.metrics.answered(record.model if label is None else label, record.version or "", record.role,
                              status, record.latency_ms / 1000)
        content = json.dumps({"request_id": record.request_id, **body}).encode()
        headers = {"x-request-id": record.request_id}
        if timing is not None and status == 200:
            headers["server-timing"] = timing
        return Response(content, status, headers=headers, media_type="application/json")

    async def feedback(self, request: Request) -> Response:
        """Labels known later, joined to the logged answers by request id (202 once committed)."""
        from starlette.responses import JSONResponse

        from modelops_ci.serve.feedback import labels_posted

        try:
            check_content_type(request.headers.get("content-type"))
            check_length(request.headers.get("content-length"), self.settings.limits)
            labels = labels_posted(await _body(request, self.settings.limits), time.time())
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        await asyncio.wrap_future(self.log.add_feedback(labels))
        return JSONResponse({"accepted": len(labels)}, 202)

    async def healthz(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        served = self.state.current
        problems = list(served.problems)
        last = self.state.last
        if last is not None and last.error is not None:
            problems.append(f"the last reload was refused, the versions below still serve: {last.error}")
        ready = served.ready and not problems
        body = {"ready": ready, "stage": served.stage, "serving": _serving(served), "problems": problems}
        return JSONResponse(body, 200 if ready else 503)

    async def metrics_text(self, request: Request) -> Response:
        from starlette.responses import Response

        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """404 and 405 for paths and methods the app has not, as JSON like every other answer."""
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        status = exc.status_code if isinstance(exc, HTTPException) else 400
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        rid = router.request_id(request.headers.get(router.REQUEST_ID_HEADER))
        return JSONResponse({"request_id": rid, "error": f"{request.method} {request.url.path}: {detail}"}, status,
                            headers={"x-request-id": rid})

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        from starlette.responses import JSONResponse

        rid = router.request_id(request.headers.get(router.REQUEST_ID_HEADER))
        log.error("request %s: internal error", rid, exc_info=exc)
        return JSONResponse({"request_id": rid, "error": "internal error (logged)"}, 500,
                            headers={"x-request-id": rid})


def _chosen(served: Served, request: Request, arrived: _Request) -> router.Choice:
    route = served.routes.get(arrived.model)
    if route is None:
        names = ", ".join(sorted(served.routes)) or "none"
        raise BadRequest(404, f"no model '{arrived.model}' is served here (served: {names})")
    pinned = request.path_params.get("version")
    if pinned is not None:
        return _pinned(route.champion, route.challenger, arrived.model, pinned)
    choice = router.choose(route, request.headers.get(router.ROUTE_KEY_HEADER) or arrived.id)
    if choice is None:
        raise BadRequest(503, f"model '{arrived.model}' has no version loaded: /readyz says why")
    return choice


def _pinned(champion: ServedVersion | None, challenger: ServedVersion | None, model: str,
            version: str) -> router.Choice:
    if champion is not None and champion.version == version:
        return router.Choice(champion, "champion")
    if challenger is not None and challenger.version == version:
        return router.Choice(challenger, "challenger")
    served = ", ".join(v.version for v in (champion, challenger) if v is not None) or "none"
    raise BadRequest(404, f"model '{model}' has no version '{version}' served here (served: {served})")


async def _rows(request: Request, batcher: Batcher, limits: Limits) -> list[Row]:
    check_content_type(request.headers.get("content-type"))
    check_length(request.headers.get("content-length"), limits)
    return rows_of(await _body(request, limits), batcher.signature, limits)


async def _body(request: Request, limits: Limits) -> bytes:
    """The body, read no further than the limit (a Content-Length can be absent or lie)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _record(arrived: _Request, version: str | None, role: Role, status: int, error: str | None,
            features: str, answer: Answer | None = None) -> Record:
    """The log's record of the answer to the caller; `features`: the rows as JSON ("" when unread)."""
    return Record(
        request_id=arrived.id, model=arrived.model, version=version, role=role, served=True,
        time=arrived.time, latency_ms=(time.perf_counter() - arrived.started) * 1000, status=status, error=error,
        features=features,
        prediction="" if answer is None else json.dumps(answer.predictions),
        score="" if answer is None or answer.scores is None else json.dumps(answer.scores),
    )


def _serving(served: Served) -> list[dict[str, Any]]:
    """What answers now: each model's champion, and its challenger with its mode and weight."""
    serving: list[dict[str, Any]] = []
    for route in served.routes.values():
        if route.champion is not None:
            serving.append({"model": route.name, "version": route.champion.version, "role": "champion"})
        if route.challenger is not None:
            serving.append({"model": route.name, "version": route.challenger.version, "role": route.mode,
                            "weight": route.weight})
    return serving
