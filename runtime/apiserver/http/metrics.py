"""Prometheus metrics of the embedded API server, on the registry passed in (never the global one).

Labels as kube-apiserver's apiserver_request_* series: verb, group, resource, subresource (and code on
the counter). Resources are the served types (built-ins and installed CRDs), so cardinality is bounded
by the schema, not by objects or clients; requests that never resolve to a type count as resource "".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Seconds; kube-apiserver's buckets shortened to what a small server needs.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Requests by verb/resource/code, their latency (watches excluded: long-running), in flight."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        labels = ["verb", "group", "resource", "subresource"]
        self.requests = Counter(
            "kedge_apiserver_requests", "API requests answered", [*labels, "code"], registry=r
        )
        self.duration = Histogram(
            "kedge_apiserver_request_duration_seconds",
            "Latency of non-watch API requests",
            labels,
            buckets=BUCKETS,
            registry=r,
        )
        self.inflight = Gauge("kedge_apiserver_requests_in_flight", "Requests being served", registry=r)
        self.watches = Gauge("kedge_apiserver_watches", "Open watch streams", registry=r)

    def observe(self, labels: tuple[str, str, str, str], code: int, seconds: float | None) -> None:
        self.requests.labels(*labels, str(code)).inc()
        if seconds is not None:
            self.duration.labels(*labels).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
