"""The edge's Prometheus families (``kedge_edge_*``) through prometheus_client: imported by
runtime/edge/metrics.py (EdgeMetrics) on the first scrape or pod sync, never at start.

Two kinds, on one registry of their own (never prometheus-client's global one):
- event metrics, recorded as things happen: the pod sync latency histogram (EdgeMetrics.pod_sync);
- state metrics, read at scrape time from the runtime's status snapshot and the hub's message counts
  (StatusCollector): the cloud link, messages by direction/operation/type, the outbox (messages not
  yet delivered to the cloud), reconnects, the cache, pods, twins, the process.
Label values that come from peers are bounded (protocol.metric_labels) or from fixed sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from runtime.edge.metrics import Counts

SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=_num(value))


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=_num(value))


class StatusCollector(Collector):
    """Families built from the latest status snapshot (set by ``update`` just before a scrape)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.status: dict[str, Any] = {}

    def update(self, status: dict[str, Any]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        s = self.status
        yield from self._cloud(s.get("cloud") or {})
        yield from self._cache(s.get("cache") or {}, s.get("pods") or [])
        yield from self._devices(s.get("devices") or {})
        yield from self._events(s.get("events") or {})
        yield from self._usage(s.get("usage") or {})
        node = s.get("node") or {}
        yield _gauge("kedge_edge_node_ready", "1 when the node reports Ready", bool(node.get("ready")))
        proc = s.get("process") or {}
        yield _gauge("kedge_edge_process_resident_memory_bytes", "RSS of the runtime", proc.get("rssBytes"))
        yield _counter("kedge_edge_process_cpu_seconds", "CPU time of the runtime", proc.get("cpuSeconds"))

    def _cloud(self, cloud: dict[str, Any]) -> Iterator[Metric]:
        yield _gauge(
            "kedge_edge_cloud_connected", "1 while the cloud link is up", bool(cloud.get("connected"))
        )
        yield _counter("kedge_edge_cloud_reconnects", "Cloud links opened again", cloud.get("reconnects"))
        yield _gauge(
            "kedge_edge_outbox_messages",
            "Messages for the cloud not yet delivered (durable outbox)",
            cloud.get("outbox"),
        )
        dropped = CounterMetricFamily(
            "kedge_edge_outbox_dropped", "Outbox messages dropped at its bound, by kind", labels=["kind"]
        )
        for kind, n in sorted((cloud.get("outbox_dropped") or {}).items()):
            dropped.add_metric([str(kind)], _num(n))
        yield dropped
        yield _counter(
            "kedge_edge_malformed_frames", "Cloud frames that were not messages", cloud.get("malformed")
        )
        msgs = CounterMetricFamily(
            "kedge_edge_messages",
            "Messages over the cloud link",
            labels=["direction", "operation", "type"],
        )
        for (direction, op, typ), n in sorted(self.counts().items()):
            msgs.add_metric([direction, op, typ], n)
        yield msgs

    def _cache(self, cache: dict[str, Any], pods: list[Any]) -> Iterator[Metric]:
        objects = GaugeMetricFamily("kedge_edge_cache_objects", "Objects in the local cache", labels=["type"])
        for typ, n in sorted((cache.get("objects") or {}).items()):
            objects.add_metric([str(typ)], _num(n))
        yield objects
        yield _gauge("kedge_edge_cache_size_bytes", "Bytes of the cache database", cache.get("bytes"))
        yield _gauge("kedge_edge_pods", "Pods the pod manager runs", len(pods))

    def _events(self, events: dict[str, Any]) -> Iterator[Metric]:
        """The kubelet events the runtime recorded (runtime/edge/events.py), by what became of them."""
        fam = CounterMetricFamily(
            "kedge_edge_events", "Kubernetes events recorded for the cloud, by outcome", labels=["outcome"]
        )
        for outcome in ("recorded", "sent", "filtered", "dropped"):
            fam.add_metric([outcome], _num(events.get(outcome)))
        yield fam
        yield _gauge("kedge_edge_events_queued", "Events waiting for the cloud link", events.get("queued"))

    def _usage(self, usage: dict[str, Any]) -> Iterator[Metric]:
        """Resource usage sampling for `kubectl top` (runtime/edge/usage/) and what it costs."""
        fam = CounterMetricFamily(
            "kedge_edge_usage_samples", "Resource usage samples taken, by outcome", labels=["outcome"]
        )
        for outcome in ("taken", "reported", "failed"):
            fam.add_metric(
                [outcome], _num(usage.get({"taken": "samples", "failed": "errors"}.get(outcome, outcome)))
            )
        yield fam
        yield _counter(
            "kedge_edge_usage_sampling_cpu_seconds",
            "CPU time of the runtime during usage samples",
            usage.get("cpuSeconds"),
        )

    def _devices(self, devices: dict[str, Any]) -> Iterator[Metric]:
        twins = CounterMetricFamily(
            "kedge_edge_twin_messages", "Device twin messages handled, by kind", labels=["kind"]
        )
        for kind, n in sorted((devices.get("messages") or {}).items()):
            twins.add_metric([str(kind)], _num(n))
        yield twins
        rejected = CounterMetricFamily(
            "kedge_edge_twin_rejections", "Twin requests rejected, by result code", labels=["code"]
        )
        for code, n in sorted((devices.get("rejected") or {}).items()):
            rejected.add_metric([str(code)], _num(n))
        yield rejected
        yield _gauge("kedge_edge_devices", "Devices bound to this node", len(devices.get("devices") or []))


class Families:
    """The registry, the pod sync histogram and the status collector, made together on first use."""

    def __init__(self, counts: Counts) -> None:
        self.registry = CollectorRegistry()
        self.pod_sync = Histogram(
            "kedge_edge_pod_sync_duration_seconds",
            "Time from a pod change arriving to its sync finishing",
            buckets=SYNC_BUCKETS,
            registry=self.registry,
        )
        self.state = StatusCollector(counts)
        self.registry.register(self.state)

    def exposition(self, status: dict[str, Any]) -> tuple[bytes, str]:
        self.state.update(status)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
