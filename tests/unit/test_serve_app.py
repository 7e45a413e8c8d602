"""The serving app in process (httpx's ASGI transport, one event loop per test): answers and their
versions, canary and shadow, micro-batching, bad input, reloads, metrics. Models are small real
scikit-learn pipelines fitted here; the prediction log is a list (the real one is wired by `serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_ci.errors import UserError
from modelops_ci.serve.app import Settings, build_app
from modelops_ci.serve.batcher import Batcher, Batching
from modelops_ci.serve.router import bucket
from modelops_ci.serve.shadow import ShadowBatching, ShadowLane
from modelops_ci.serve.signature import Limits
from modelops_ci.serve.state import Route, Served, ServedVersion, ServingState, digest
from tests.helpers.serving import CATEGORICAL, NUMERIC, PREDICT, ROW, Collected, Gated, fitted_loans, state_of, version


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any]:
    return fitted_loans(20), fitted_loans(5, seed=1)


@contextlib.asynccontextmanager
async def client(state: ServingState, log: Collected, settings: Settings | None = None,
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = build_app(state, log, settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
        yield c, app.state.server


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def batcher_of(server: Any, served: ServedVersion) -> Batcher:
    batcher: Batcher = server.lanes.of(server.state.current).batchers[id(served)]
    return batcher


def shadow_of(server: Any, served: ServedVersion) -> ShadowLane:
    lane: ShadowLane = server.lanes.of(server.state.current).shadows[id(served)]
    return lane


def shadows_idle(server: Any) -> bool:
    return all(lane.in_flight == 0 for lane in server.lanes.of(server.state.current).shadows.values())


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition` holds (never a fixed sleep; a bound only against a hang)."""
    for _ in range(20_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


def test_the_champion_answers_with_its_version_scores_and_a_logged_record(models: tuple[Any, Any]) -> None:
    log = Collected()
    rows = [ROW, {**ROW, "income": None, "region": None}]
    model_ms: list[float] = []

    async def scenario() -> None:
        async with client(state_of(version("v1", models[0])), log) as (http, _):
            answer = await http.post(PREDICT, json={"rows": rows}, headers={"X-Request-Id": "req-1"})
            assert answer.status_code == 200
            assert answer.headers["x-request-id"] == "req-1"
            timing = answer.headers["server-timing"]
            assert timing.startswith("model;dur=")
            model_ms.append(float(timing.removeprefix("model;dur=")))
            body = answer.json()
            assert (body["request_id"], body["model"], body["version"]) == ("req-1", "loans", "v1")
            import pandas as pd

            expected = models[0].predict_proba(pd.DataFrame(rows)[NUMERIC + CATEGORICAL])[:, 1]
            assert body["scores"] == pytest.approx(expected.tolist())
            assert body["predictions"] == models[0].predict(pd.DataFrame(rows)).tolist()
            assert (await http.get("/healthz")).status_code == 200

    run(scenario)
    [record] = log.records
    assert (record.request_id, record.version, record.role, record.served, record.status) == \
        ("req-1", "v1", "champion", True, 200)
    assert json.loads(record.features) == rows
    assert len(json.loads(record.prediction)) == len(json.loads(record.score)) == 2
    assert 0 < model_ms[0] < record.latency_ms  # the model call is part of the answer's time
    assert log.alone == [True]  # the only request in flight: its record may commit without a hand-off


def test_canary_answers_by_the_sticky_split_of_the_request_id_or_route_key(models: tuple[Any, Any]) -> None:
    log = Collected()
    ids = [f"id-{n}" for n in range(60)]

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", models[1]), "canary", 30)
        async with client(state, log) as (http, _):
            for rid in ids:
                answer = (await http.post(PREDICT, json={"row": ROW}, headers={"X-Request-Id": rid})).json()
                assert answer["version"] == ("v2" if bucket(rid) < 30 else "v1")
            keyed = [(await http.post(PREDICT, json={"row": ROW}, headers={"X-Modelops-Route-Key": "user-7"})).json()
                     for _ in range(5)]
            assert {a["version"] for a in keyed} == {"v2" if bucket("user-7") < 30 else "v1"}

    run(scenario)
    assert {r.role for r in log.records if r.version == "v2"} == {"challenger"}
    assert 0 < len(log.roles("challenger")) < len(ids)


# shadow copies gathered for 10 ms, not a second: the tests need no big batches, only their records
PROMPT = Settings(shadow_batching=ShadowBatching(max_wait_ms=10))


def test_a_shadow_is_logged_never_returned_and_a_stuck_or_failing_one_delays_nothing(models: tuple[Any, Any]) -> None:
    log = Collected()
    stuck = Gated(models[1], held=True)
    failing = Gated(models[1], fail=True)

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", stuck), "shadow", 100)
        async with client(state, log, PROMPT) as (http, server):
            answers = [await http.post(PREDICT, json={"row": ROW}) for _ in range(5)]
            # every answer came back while the shadow's model is still held
            assert {a.json()["version"] for a in answers} == {"v1"}
            assert log.roles("shadow") == []
            stuck.release.set()
            await until(lambda: len(log.roles("shadow")) == 5)
            await until(lambda: shadows_idle(server))
        state = state_of(version("v1", models[0]), version("v3", failing), "shadow", 100)
        async with client(state, log, PROMPT) as (http, server):
            answer = await http.post(PREDICT, json={"row": ROW})
            assert (answer.status_code, answer.json()["version"]) == (200, "v1")
            await until(lambda: any(r.version == "v3" for r in log.records))

    run(scenario)
    shadows = log.roles("shadow")
    assert {(r.version, r.served, r.status) for r in shadows} == {("v2", False, 200), ("v3", False, 500)}
    assert all(r.role == "champion" and r.version == "v1" for r in log.records if r.served)


def test_a_shadow_falling_behind_drops_copies_and_counts_them(models: tuple[Any, Any]) -> None:
    log = Collected()
    stuck = Gated(models[1], held=True)

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", stuck), "shadow", 100)
        bounded = Settings(shadow_batching=ShadowBatching(max_wait_ms=10, limit=2))
        async with client(state, log, bounded) as (http, server):
            for _ in range(5):
                assert (await http.post(PREDICT, json={"row": ROW})).status_code == 200
            metrics = (await http.get("/metrics")).text
            stuck.release.set()
            await until(lambda: shadows_idle(server))
        assert 'modelops_shadow_dropped_total{model="loans",version="v2"} 3.0' in metrics

    run(scenario)
    assert len(log.roles("shadow")) == 2


def test_shadow_copies_wait_for_a_batch_and_log_their_model_calls_time(models: tuple[Any, Any]) -> None:
    """Nobody waits for a shadow, so its copies are gathered (here: until 20 rows) and scored in one
    call, their records made and appended on the shadow's own thread; each shadow record's latency
    is that call's, not the wait. The shadow version asked by name answers at once, from its
    batcher, not from the shadow's gathering."""
    log = Collected()
    shadow = Gated(models[1])
    gathered = ShadowBatching(max_rows=20, max_wait_ms=600_000)  # only a full batch goes

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", shadow), "shadow", 100)
        async with client(state, log, Settings(shadow_batching=gathered)) as (http, server):
            for n in range(20):
                if n == 10:  # ten copies are gathering: a bound only against a hang
                    pinned = await asyncio.wait_for(http.post("/v1/models/loans/versions/v2/predict",
                                                              json={"row": ROW}), timeout=60)
                    assert (pinned.status_code, pinned.json()["version"]) == (200, "v2")
                assert (await http.post(PREDICT, json={"row": {**ROW, "income": float(n)}})).status_code == 200
            await until(lambda: len(log.roles("shadow")) == 20)
            await until(lambda: shadows_idle(server))

    run(scenario)
    assert shadow.calls == [1, 20]  # the pinned request's, then the shadow's one call
    assert set(log.appended_by) == {"shadow-loans-v2_0"}
    champion_latency = max(r.latency_ms for r in log.roles("champion"))
    latencies = {r.latency_ms for r in log.roles("shadow")}
    assert len(latencies) == 1 and latencies.pop() > 0  # one call's time, the same for all 20
    assert champion_latency > 0


class _Burning(Gated):
    """A model whose every call uses `cpu_seconds` of its thread's CPU time (not of the clock's)."""

    def __init__(self, inner: Any, cpu_seconds: float) -> None:
        super().__init__(inner)
        self.cpu_seconds = cpu_seconds

    def predict_proba(self, frame: Any) -> Any:
        import time

        started = time.thread_time()
        while time.thread_time() - started < self.cpu_seconds:
            pass
        return super().predict_proba(frame)


def test_a_shadow_over_its_cpu_budget_is_held_and_its_copies_wait_while_the_champion_answers(
        models: tuple[Any, Any]) -> None:
    log = Collected()
    costly = _Burning(models[1], cpu_seconds=0.08)  # over the budget's 50 ms burst in one call
    served_shadow = version("v2", costly)
    # 1e-6 of the rest's CPU or of the clock: ~a day to earn the 80 ms back
    tight = ShadowBatching(max_rows=1, max_wait_ms=0, cpu_share=1e-6, cpu_floor=1e-6)

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), served_shadow, "shadow", 100)
        async with client(state, log, Settings(shadow_batching=tight)) as (http, server):
            shadow = shadow_of(server, served_shadow)
            assert (await http.post(PREDICT, json={"row": ROW})).status_code == 200
            await until(lambda: len(log.roles("shadow")) == 1)
            answers = [await http.post(PREDICT, json={"row": ROW}) for _ in range(3)]
            assert {a.status_code for a in answers} == {200}
            await until(lambda: shadow.held_for_budget and shadow.queued == 3)
            assert costly.calls == [1]
            assert len(log.roles("shadow")) == 1  # the other three wait for the budget

    run(scenario)
    assert len(log.roles("champion")) == 4
    # the server stopped: what the shadow held was scored and logged then, budget or not
    assert costly.calls == [1, 1, 1, 1] and len(log.roles("shadow")) == 4


def test_a_stopping_server_logs_the_shadow_copies_it_holds_and_waits_for_a_stuck_one_no_longer_than_its_bound(
        models: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    log = Collected()
    gathering = Settings(shadow_batching=ShadowBatching(max_wait_ms=600_000))  # the copies never go by time
    stuck = Gated(models[1], held=True)
    bounded = Settings(shadow_batching=ShadowBatching(max_wait_ms=0), shadow_drain_seconds=0.05)

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", models[1]), "shadow", 100)
        async with client(state, log, gathering) as (http, _):
            for _ in range(3):
                assert (await http.post(PREDICT, json={"row": ROW})).status_code == 200
            assert log.roles("shadow") == []
        assert len(log.roles("shadow")) == 3  # scored and logged as the server stopped
        state = state_of(version("v1", models[0]), version("v3", stuck), "shadow", 100)
        async with client(state, log, bounded) as (http, _):
            assert (await http.post(PREDICT, json={"row": ROW})).status_code == 200
            await until(lambda: stuck.calls == [1])
        # the stop did not wait for the held model
        assert [r.version for r in log.roles("shadow")] == ["v2"] * 3
        stuck.release.set()

    with caplog.at_level("WARNING", logger="modelops_ci.serve.lanes"):
        run(scenario)
    assert "stopping: 1 shadow copies not scored within" in caplog.text


def test_concurrent_requests_are_scored_in_fewer_calls_each_getting_its_own_rows(models: tuple[Any, Any]) -> None:
    log = Collected()
    gated = Gated(models[0], held=True)
    served = version("v1", gated)
    rows = [{**ROW, "income": 10.0 + 3 * n} for n in range(32)]

    async def scenario() -> None:
        async with client(state_of(served), log) as (http, server):
            batcher = batcher_of(server, served)
            calls = [asyncio.create_task(http.post(PREDICT, json={"row": row})) for row in rows]
            # the model holds its first call; every request is in it or queued for the next
            await until(lambda: bool(gated.calls) and gated.calls[0] + batcher.queued == len(rows))
            gated.release.set()
            answers = [(await call).json() for call in calls]
        import pandas as pd

        expected = models[0].predict_proba(pd.DataFrame(rows)[NUMERIC + CATEGORICAL])[:, 1]
        assert [a["scores"][0] for a in answers] == pytest.approx(expected.tolist())

    run(scenario)
    assert len(gated.calls) <= 2  # one call per request without batching: 32
    assert sum(gated.calls) == len(rows)
    assert len(log.records) == 32
    assert log.alone.count(False) >= 31  # answers of one batch go to the writer's group commit


def test_a_call_waits_for_the_clients_that_arrived_while_the_last_one_scored(models: tuple[Any, Any]) -> None:
    """Clients that queued during a call and the one it answered are all active: the next call
    waits for all four (bounded by max_wait_ms, here so long that only the count can end it)
    instead of scoring the three at once and the fourth alone."""
    log = Collected()
    gated = Gated(models[0], held=True)
    served = version("v1", gated)
    patient = Settings(batching=Batching(max_wait_ms=600_000))

    async def scenario() -> None:
        async with client(state_of(served), log, patient) as (http, server):
            batcher = batcher_of(server, served)
            first = asyncio.create_task(http.post(PREDICT, json={"row": ROW}))
            await until(lambda: gated.calls == [1])
            queued = [asyncio.create_task(http.post(PREDICT, json={"row": ROW})) for _ in range(3)]
            await until(lambda: batcher.queued == 3)
            gated.release.set()
            assert (await first).status_code == 200
            queued.append(asyncio.create_task(http.post(PREDICT, json={"row": ROW})))  # the first client again
            answers = await asyncio.wait_for(asyncio.gather(*queued), timeout=60)
            assert {a.status_code for a in answers} == {200}

    run(scenario)
    assert gated.calls == [1, 4]


@pytest.mark.parametrize("connected", [None, 1])  # on the worker, and on the loop's thread for one client
def test_a_model_error_fails_its_batch_with_a_plain_500_and_is_logged(models: tuple[Any, Any],
                                                                      connected: int | None) -> None:
    log = Collected()
    settings = Settings(connections=None if connected is None else lambda: connected)

    async def scenario() -> None:
        async with client(state_of(version("v1", Gated(models[0], fail=True))), log, settings) as (http, _):
            answer = await http.post(PREDICT, json={"row": ROW}, headers={"X-Request-Id": "boom"})
            assert answer.status_code == 500
            assert answer.json() == {"request_id": "boom", "error": "model loans v1 failed to score: ValueError "
                                     "(request boom is logged)"}

    run(scenario)
    assert [(r.status, r.version, r.error) for r in log.records] == [(500, "v1", "model loans v1 failed to score: "
                                                                       "ValueError")]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data[: len(data) // 2]
    yield data[len(data) // 2:]


BIG = json.dumps({"rows": [ROW] * 3}).encode()
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(("path", "request_args", "status", "message"), [
    (PREDICT, {"content": b"{nope", "headers": JSON}, 400, "the body is not JSON"),
    (PREDICT, {"json": {"row": {**ROW, "Income": 1}}}, 422, "rows[0]: unknown column 'Income'"),
    (PREDICT, {"json": {"rows": [ROW, {**ROW, "age": "old"}]}}, 422, 'rows[1].age: expected a number, got "old"'),
    (PREDICT, {"json": {"rows": [ROW] * 5}}, 413, "rows: 5 rows, over the limit of 4"),
    (PREDICT, {"content": b"{" + b" " * 400 + b"}", "headers": JSON}, 413, "over the limit of 300 bytes"),
    (PREDICT, {"content": _chunks(b" " * 400), "headers": JSON}, 413, "over the limit of 300 bytes"),
    (PREDICT, {"content": BIG}, 415, "send the rows as JSON with Content-Type: application/json"),
    ("/v1/models/nobody/predict", {"json": {"row": ROW}}, 404, "no model 'nobody' is served here (served: loans)"),
    ("/v1/models/loans/versions/v9/predict", {"json": {"row": ROW}}, 404,
     "model 'loans' has no version 'v9' served here (served: v1)"),
])
def test_bad_input_is_a_4xx_that_says_what_and_is_logged(models: tuple[Any, Any], path: str,
                                                         request_args: dict[str, Any], status: int,
                                                         message: str) -> None:
    log = Collected()
    settings = Settings(limits=Limits(max_rows=4, max_bytes=300))

    async def scenario() -> None:
        async with client(state_of(version("v1", models[0])), log, settings) as (http, _):
            answer = await http.post(path, **request_args)
            assert answer.status_code == status
            assert message in answer.json()["error"]
            assert answer.json()["request_id"] == answer.headers["x-request-id"]

    run(scenario)
    [record] = log.records
    assert (record.role, record.version, record.status, record.served) == ("none", None, status, True)
    assert message in (record.error or "")


def test_a_pinned_version_answers_and_unknown_paths_are_json(models: tuple[Any, Any]) -> None:
    log = Collected()

    async def scenario() -> None:
        state = state_of(version("v1", models[0]), version("v2", models[1]), "canary", 10)
        async with client(state, log) as (http, _):
            pinned = await http.post("/v1/models/loans/versions/v2/predict", json={"row": ROW})
            assert (pinned.status_code, pinned.json()["version"]) == (200, "v2")
            missing = await http.get("/v2/nothing")
            assert missing.status_code == 404
            assert "GET /v2/nothing" in missing.json()["error"]
            wrong_method = await http.get(PREDICT)
            assert wrong_method.status_code == 405

    run(scenario)


def test_a_reload_moves_traffic_in_flight_requests_finish_and_a_refused_one_keeps_the_old(
        models: tuple[Any, Any]) -> None:
    log = Collected()
    held = Gated(models[0], held=True)
    old, new = version("v1", held), version("v2", models[1])

    def refused() -> Served:
        raise UserError("loans v3: the tag loans@v3#staging does not verify")

    async def scenario() -> None:
        state = state_of(old)
        async with client(state, log) as (http, server):
            in_flight = [asyncio.create_task(http.post(PREDICT, json={"row": ROW})) for _ in range(10)]
            await until(lambda: bool(held.calls) and held.calls[0] + batcher_of(server, old).queued == 10)
            await state.reload(lambda: state_of(new).current)
            after = await http.post(PREDICT, json={"row": ROW})
            held.release.set()
            assert {(await call).json()["version"] for call in in_flight} == {"v1"}
            assert after.json()["version"] == "v2"
            assert (await http.get("/readyz")).status_code == 200
            outcome = await state.reload(refused)
            assert outcome.error is not None
            assert (await http.post(PREDICT, json={"row": ROW})).json()["version"] == "v2"
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert "loans@v3#staging does not verify" in ready.json()["problems"][0]
            assert ready.json()["serving"] == [{"model": "loans", "version": "v2", "role": "champion"}]

    run(scenario)
    assert [r.status for r in log.records] == [200] * 12


def test_a_changed_deployment_file_reloads_and_unready_state_says_why(models: tuple[Any, Any], tmp_path: Path) -> None:
    log = Collected()
    deployment = tmp_path / "staging.yaml"
    deployment.write_text("champion: v1\n", encoding="utf-8")
    unready = Served("staging", {"loans": Route("loans", version("v2", models[1]), None)},
                     problems=("loans v3: not loaded: its sha256 does not match",), ready=False)
    settings = Settings(fingerprint=lambda: digest(deployment), load=lambda: unready, poll=0.01)

    async def scenario() -> None:
        state = state_of(version("v1", models[0]))
        async with client(state, log, settings) as (http, _):
            deployment.write_text("champion: v2\n", encoding="utf-8")
            await until(lambda: state.current is unready)
            assert (await http.post(PREDICT, json={"row": ROW})).json()["version"] == "v2"
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["problems"]) == (503, list(unready.problems))

    run(scenario)


def test_metrics_are_prometheus_text_with_requests_latency_and_batches(models: tuple[Any, Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    log = Collected()

    async def scenario() -> None:
        async with client(state_of(version("v1", models[0])), log) as (http, _):
            await asyncio.gather(*[http.post(PREDICT, json={"row": ROW}) for _ in range(6)])
            await http.post("/v1/models/other/predict", json={"row": ROW})
            text = (await http.get("/metrics")).text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        ok = (("model", "loans"), ("role", "champion"), ("status", "2xx"), ("version", "v1"))
        assert samples[("modelops_requests_total", ok)] == 6
        assert samples[("modelops_requests_total", (("model", ""), ("role", "none"), ("status", "4xx"),
                                                    ("version", "")))] == 1
        assert samples[("modelops_latency_seconds_count", (("model", "loans"), ("version", "v1")))] == 6
        assert samples[("modelops_batch_rows_sum", (("model", "loans"), ("version", "v1")))] == 6
        assert samples[("modelops_errors_total", (("code", "404"), ("model", ""), ("version", "")))] == 1

    run(scenario)


def test_feedback_is_accepted_in_its_three_forms_and_bad_labels_are_a_422(models: tuple[Any, Any]) -> None:
    log = Collected()

    async def scenario() -> None:
        async with client(state_of(version("v1", models[0])), log) as (http, _):
            one = await http.post("/v1/feedback", json={"request_id": "req-1", "label": "yes"})
            rows = await http.post("/v1/feedback", json={"request_id": "req-2", "labels": [1, 0]})
            many = await http.post("/v1/feedback", json={"feedback": [{"request_id": "req-3", "row": 2,
                                                                       "label": True}]})
            assert [r.status_code for r in (one, rows, many)] == [202, 202, 202]
            assert [r.json()["accepted"] for r in (one, rows, many)] == [1, 2, 1]
            bad = await http.post("/v1/feedback", json={"feedback": [{"request_id": "req-4", "label": {"a": 1}}]})
            assert bad.status_code == 422 and "feedback[0].label" in bad.json()["error"]
            hostile = await http.post("/v1/feedback", json={"request_id": "$(rm -rf /)", "label": 1})
            assert hostile.status_code == 422 and "request_id" in hostile.json()["error"]
            assert (await http.post("/v1/feedback", content=b"{", headers={"content-type": "application/json"})
                    ).status_code == 400

    run(scenario)
    assert [(f.request_id, f.row, f.label) for f in log.labels] == [
        ("req-1", 0, '"yes"'), ("req-2", 0, "1"), ("req-2", 1, "0"), ("req-3", 2, "true")]


class _Threads:
    """A model that notes the thread each of its calls runs on, and that thread's OpenMP threads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = inner.classes_
        self.threads: list[str] = []
        self.openmp: list[int] = []

    def predict(self, frame: Any) -> Any:
        return self.inner.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        import threading

        from threadpoolctl import threadpool_info

        self.threads.append(threading.current_thread().name)
        self.openmp.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp")
        return self.inner.predict_proba(frame)


@pytest.mark.parametrize(("connected", "on_the_loop"), [(1, True), (2, False)])
def test_one_connected_client_is_scored_on_the_loops_thread_more_are_batched_on_the_worker(
        models: tuple[Any, Any], connected: int, on_the_loop: bool) -> None:
    import threading

    noted = _Threads(models[0])
    served = version("v1", noted)

    async def scenario() -> None:
        async with client(state_of(served), Collected(), Settings(connections=lambda: connected)) as (http, server):
            for n in range(3):
                answer = await http.post(PREDICT, json={"row": {**ROW, "income": 10.0 + n}})
                assert answer.status_code == 200 and answer.headers["server-timing"].startswith("model;dur=")
            assert batcher_of(server, served).calls == 3

    run(scenario)
    loop_thread = threading.current_thread().name  # asyncio.run's loop runs on this thread
    assert (set(noted.threads) == {loop_thread}) is on_the_loop
    assert all(name.startswith("score-") for name in noted.threads) is not on_the_loop
    assert noted.openmp and set(noted.openmp) == {1}  # one OpenMP thread wherever it scores
