"""The serving app under a real uvicorn server on 127.0.0.1 (a thread of this process), answering
concurrent clients over loopback: each gets its own answer, every answer is logged, and the model
is called fewer times than it was asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from modelops_ci.serve.app import build_app
from tests.helpers.servers import LOOPBACK, POLL_EVERY, free_port
from tests.helpers.serving import ROW, Collected, Gated, fitted_loans, state_of, version

READY_WITHIN = 30.0  # seconds; it answers in well under one, only a broken server takes this long
CLIENTS = 16
REQUESTS = 160


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Collected, Gated, Any]]:
    import uvicorn

    model = Gated(fitted_loans(20), held=True)
    log = Collected()
    app = build_app(state_of(version("v1", model)), log)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://{LOOPBACK}:{port}"
    try:
        _wait_until_alive(base, thread)
        yield base, log, model, app.state.server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_until_alive(base: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it answered /healthz")
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_EVERY)
    raise RuntimeError(f"uvicorn did not answer {base}/healthz within {READY_WITHIN:.0f} s")


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while not condition():
        assert time.monotonic() < deadline, "the requests never all arrived"
        time.sleep(0.01)


def test_concurrent_clients_each_get_their_own_logged_answer(served: tuple[str, Collected, Gated, Any]) -> None:
    base, log, model, server = served
    rows = [{**ROW, "income": float(n)} for n in range(REQUESTS)]

    def ask(client: httpx.Client, n: int) -> dict[str, Any]:
        answer = client.post(f"{base}/v1/models/loans/predict", json={"row": rows[n]},
                             headers={"X-Request-Id": f"load-{n}"})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client, \
            ThreadPoolExecutor(CLIENTS) as pool:
        asked = pool.map(lambda n: ask(client, n), range(REQUESTS))
        # The model holds its first call until every client's request is in it or queued behind it:
        # then the next call takes them together, whatever the timing.
        batcher = server.lanes.of(server.state.current).batchers[id(server.state.current.routes["loans"].champion)]
        _wait_for(lambda: bool(model.calls) and model.calls[0] + batcher.queued == CLIENTS)
        model.release.set()
        answers = list(asked)

    import pandas as pd

    expected = model.inner.predict_proba(pd.DataFrame(rows)[list(ROW)])[:, 1]
    assert [a["request_id"] for a in answers] == [f"load-{n}" for n in range(REQUESTS)]
    assert [a["scores"][0] for a in answers] == pytest.approx(expected.tolist())
    assert sorted(r.request_id for r in log.records) == sorted(f"load-{n}" for n in range(REQUESTS))
    assert sum(model.calls) == REQUESTS
    assert len(model.calls) < REQUESTS  # concurrent requests shared model calls
    assert max(model.calls) > 1
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert 'modelops_requests_total{model="loans",role="champion",status="2xx",version="v1"}' in metrics.text
