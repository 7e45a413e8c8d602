"""The server's Prometheus metrics, in a registry of each app's own (tests build several apps).

Labels stay few and bounded: the model (only a served one: a name in a request for an unknown model
is counted as ""), the version, the role, and the status class (2xx, 4xx, 5xx).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

# seconds, from well under a millisecond (one row, idle) to a second (a queue that is falling behind)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metrics:
    """Counters and histograms of one app."""

    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    latency: Histogram
    batch_rows: Histogram
    shadow_dropped: Counter

    @classmethod
    def create(cls) -> Metrics:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            requests=Counter("modelops_requests", "Answers, by model, version, role and status class",
                             ["model", "version", "role", "status"], registry=registry),
            errors=Counter("modelops_errors", "Answers with a status of 400 or more, by model, version and "
                           "status code", ["model", "version", "code"], registry=registry),
            latency=Histogram("modelops_latency_seconds", "Arrival to answer ready, by model and version",
                              ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry),
            batch_rows=Histogram("modelops_batch_rows", "Rows scored per model call", ["model", "version"],
                                 buckets=BATCH_BUCKETS, registry=registry),
            shadow_dropped=Counter("modelops_shadow_dropped", "Copies not sent to a shadow that was falling "
                                   "behind", ["model", "version"], registry=registry),
        )

    def answered(self, model: str, version: str, role: str, status: int, seconds: float) -> None:
        """Count one answer (a shadow's too) and, when a model gave it, its latency."""
        self.requests.labels(model, version, role, f"{status // 100}xx").inc()
        if status >= 400:
            self.errors.labels(model, version, str(status)).inc()
        if version:
            self.latency.labels(model, version).observe(seconds)

    def answered_many(self, model: str, version: str, role: str, status: int, seconds: Sequence[float]) -> None:
        """Count answers that share their labels and status (a shadow's batch), their labels found once."""
        self.requests.labels(model, version, role, f"{status // 100}xx").inc(len(seconds))
        if status >= 400:
            self.errors.labels(model, version, str(status)).inc(len(seconds))
        if version:
            latency = self.latency.labels(model, version)
            for each in seconds:
                latency.observe(each)

    def render(self) -> bytes:
        """The Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
