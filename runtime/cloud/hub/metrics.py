"""Prometheus metrics of the CloudHub. The registry is injected so that many hubs (tests, replicas in
one process) never collide in prometheus-client's global default registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from runtime.protocol.resource import metric_labels

labels_of = metric_labels  # (operation, type), bounded: runtime/protocol/resource.py


class HubMetrics:
    """Connected edges, messages in/out by type, acks pending, resends, queue depth, refusals."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.connected = Gauge("kedge_cloudhub_connected_edges", "Edges with a live session", registry=r)
        self.messages_in = Counter(
            "kedge_cloudhub_messages_received", "Messages from edges", ["operation", "type"], registry=r
        )
        self.messages_out = Counter(
            "kedge_cloudhub_messages_sent", "Messages to edges", ["operation", "type"], registry=r
        )
        self.acks_pending = Gauge("kedge_cloudhub_acks_pending", "Unacked reliable messages", registry=r)
        self.resends = Counter("kedge_cloudhub_resends", "Reliable messages sent again", registry=r)
        self.queue_depth = Gauge(
            "kedge_cloudhub_send_queue_depth", "Messages waiting in send queues", registry=r
        )
        self.malformed = Counter(
            "kedge_cloudhub_malformed_frames", "Frames that were not messages", registry=r
        )
        self.throttled = Counter(
            "kedge_cloudhub_throttled_messages", "Messages delayed by the per-edge rate limit", registry=r
        )
        self.refused = Counter(
            "kedge_cloudhub_refused_handshakes", "Upgrades refused after TLS", ["reason"], registry=r
        )
        self.refused_messages = Counter(
            "kedge_cloudhub_refused_messages",
            "Edge messages answered 403 by the hub (naming another node's resources)",
            registry=r,
        )
        self.opened = Counter(
            "kedge_cloudhub_sessions_opened",
            "Edge sessions opened (first connects and reconnects)",
            registry=r,
        )
        self.closed = Counter("kedge_cloudhub_sessions_closed", "Sessions ended", ["reason"], registry=r)
        self.send_dropped = Counter(
            "kedge_cloudhub_send_dropped",
            "Unreliable messages not delivered (edge offline or stuck)",
            registry=r,
        )

    def bind(self, pending: Callable[[], int], depth: Callable[[], int]) -> None:
        """Gauges computed at scrape time from the hub's state."""
        self.acks_pending.set_function(pending)
        self.queue_depth.set_function(depth)

    def sent(self, operation: str, resource: str) -> None:
        self.messages_out.labels(*labels_of(operation, resource)).inc()

    def received(self, operation: str, resource: str) -> None:
        self.messages_in.labels(*labels_of(operation, resource)).inc()
