"""`modelops-ci serve`: answer from what deployments/<stage>.yaml names, as far as the registry lets it.

The first load happens before the server listens: a deployment file that cannot be read, or a
prediction log that is corrupt, stops it with exit 2 and nothing is served. After that, a change
of the file or of the tags reloads it while requests keep flowing (serve/state.py).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError
from modelops_ci.serve.budget import SHADOW_CPU_SHARE

if TYPE_CHECKING:
    from modelops_ci.serve.predlog import Survives

LOG_FOLDER = (".modelops", "serve")


@dataclass(frozen=True)
class Options:
    stage: str
    host: str = "127.0.0.1"
    port: int = 8080
    log: Path | None = None  # the prediction log (SQLite); default .modelops/serve/<stage>.sqlite
    max_rows: int = 256
    max_wait_ms: float = 2.0
    shadow_cpu: float = SHADOW_CPU_SHARE  # a shadow's share of the CPU the rest of the server uses
    poll: float = 2.0
    log_survives: Survives = "process"  # what an answered request's record outlives (predlog.SYNC)


ROTATED_FOLDER = "predictions"


def default_log(root: Path, stage: str) -> Path:
    return root.joinpath(*LOG_FOLDER, f"{stage}.sqlite")


def default_rotated(root: Path, stage: str) -> Path:
    return root / ROTATED_FOLDER / stage


def serve(root: Path, options: Options) -> None:
    """Load, then serve until interrupted."""
    import uvicorn

    from modelops_ci.serve.app import Settings, build_app
    from modelops_ci.serve.batcher import Batching
    from modelops_ci.serve.catalog import Catalog
    from modelops_ci.serve.predlog import PredictionLog
    from modelops_ci.serve.shadow import ShadowBatching
    from modelops_ci.serve.state import ServingState

    _check_host(options.host)
    catalog = Catalog(root, options.stage)
    first = catalog.load()
    for problem in first.problems:
        logging.getLogger("modelops_ci.serve").warning("not served: %s", problem)
    with PredictionLog.open(options.log or default_log(root, options.stage), survives=options.log_survives) as log:
        running: list[uvicorn.Server] = []
        settings = Settings(batching=Batching(max_rows=options.max_rows, max_wait_ms=options.max_wait_ms),
                            shadow_batching=ShadowBatching(cpu_share=options.shadow_cpu),
                            fingerprint=catalog.fingerprint, load=catalog.load, poll=options.poll,
                            connections=lambda: open_connections(running))
        app = build_app(ServingState(first), log, settings)
        # proxy_headers off: nothing here reads the client's address, so X-Forwarded-* headers are
        # neither trusted nor parsed (one middleware layer less on every request)
        running.append(uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, workers=1,
                                                     log_level="warning", access_log=False, proxy_headers=False)))
        running[0].run()


def open_connections(running: list[Any]) -> int:
    """The uvicorn server's open client connections (its `server_state`); before it runs, "many"."""
    return len(running[0].server_state.connections) if running else 2


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise UserError(f"--host {host}: give an IP address to listen on, e.g. 127.0.0.1") from None
