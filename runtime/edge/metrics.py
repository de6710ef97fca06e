"""Prometheus metrics of the edge runtime (``kedge_edge_*``), exposed by statusd's GET /metrics.

EdgeMetrics is what the runtime holds from the start; the families themselves and prometheus_client
(runtime/edge/metricfamilies.py) are imported on the first scrape or the first pod sync, whichever
comes first. prometheus_client's package imports its exposition servers (http.server, urllib.request,
wsgiref, gzip: about 1 MB of the idle edge's RSS, docs/benchmarks.md), which an edge nobody scrapes
and with no pods never needs. The output is the same as if they had been made at start: the
histogram is created empty, and the state families are read from the status at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.edge.metricfamilies import Families

Counts = Callable[[], Mapping[tuple[str, str, str], int]]


class EdgeMetrics:
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self._families: Families | None = None

    def families(self) -> Families:
        """The registry and its families, made (and prometheus_client imported) on first use."""
        if self._families is None:
            from runtime.edge.metricfamilies import Families

            self._families = Families(self.counts)
        return self._families

    @property
    def loaded(self) -> bool:
        """True once prometheus_client is in use (a scrape or a pod sync happened)."""
        return self._families is not None

    def observe_pod_sync(self, seconds: float) -> None:
        """One sync_pod took ``seconds`` (kedge_edge_pod_sync_duration_seconds)."""
        self.families().pod_sync.observe(seconds)

    def exposition(self, status: dict[str, Any]) -> tuple[bytes, str]:
        return self.families().exposition(status)
