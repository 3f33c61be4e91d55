"""Prometheus metrics of one serving worker (`GET /metrics`).

Each app owns its own `CollectorRegistry`, so several apps in one process (tests) never clash.
With several uvicorn workers each reports its own numbers; Prometheus sums them by instance.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "deepcast_requests",
            "HTTP requests by endpoint, model and status code",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "deepcast_request_seconds",
            "Request latency by endpoint and model",
            ["endpoint", "model"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "deepcast_errors",
            "Responses with status >= 400, by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.active = Gauge(
            "deepcast_active_version",
            "1 for the version each model is served at",
            ["model", "version"],
            registry=self.registry,
        )

    def observe(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, model, str(status)).inc()
        self.latency.labels(endpoint, model).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()

    def set_active(self, versions: dict[str, str]) -> None:
        self.active.clear()
        for model, version in versions.items():
            self.active.labels(model, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
