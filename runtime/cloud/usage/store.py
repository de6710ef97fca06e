"""UsageStore: the last resource-usage report of every connected edge, compact and bounded.

Why compact: a cloud holds 10,000 edges; a report is checked into tuples, then kept as compact JSON
bytes (unpacked only when read: `kubectl top`, a scrape) — measured per edge in docs/benchmarks.md —
and a node's record is replaced, never accumulated. Reports that break the shape
(runtime/edge/usage/sampler.py) or exceed MAX_CONTAINERS are refused and counted; a node's record goes
when its session ends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.cloud.hub.session import SessionInfo
from runtime.protocol import Message
from runtime.protocol.resource import RT_NODEUSAGE, parse_resource, strip_node_prefix

log = logging.getLogger("kedge.cloud.usage")

MAX_CONTAINERS = 500
_MAX_NAME = 253


class ContainerUsage(NamedTuple):
    name: str
    start: int  # unix seconds
    cpu_ns: int  # cumulative
    cpu_rate: int  # nanocores over the report's window
    memory: int  # working set bytes


class PodUsage(NamedTuple):
    namespace: str
    name: str
    uid: str
    containers: tuple[ContainerUsage, ...]


class NodeUsage(NamedTuple):
    time_ms: int
    window_ms: int
    cpu_ns: int
    cpu_rate: int
    memory: int
    pods: tuple[PodUsage, ...]


def _n(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValueError(f"not a non-negative number: {v!r}")
    return int(v)


def _s(v: Any) -> str:
    # not sys.intern: the record is packed into bytes anyway, and interning every pod's name and uid
    # grew CPython's interned-strings dict by ≈ 940 B per 10-pod edge (a dict that never shrinks)
    if not isinstance(v, str) or len(v) > _MAX_NAME:
        raise ValueError(f"not a name: {v!r}")
    return v


def parse_report(body: Any) -> NodeUsage:
    """The report as a NodeUsage; ValueError (or KeyError/TypeError) when it is not one."""
    node = body["node"]
    pods, count = [], 0
    for p in body.get("pods") or ():
        containers = tuple(
            ContainerUsage(_s(c["name"]), _n(c["start"]), _n(c["cpu"]), _n(c["cpuRate"]), _n(c["memory"]))
            for c in p["containers"]
        )
        count += len(containers)
        if count > MAX_CONTAINERS:
            raise ValueError(f"more than {MAX_CONTAINERS} containers")
        pods.append(PodUsage(_s(p["namespace"]), _s(p["name"]), _s(p["uid"]), containers))
    return NodeUsage(
        _n(body["time"]),
        _n(body["window"]),
        _n(node["cpu"]),
        _n(node["cpuRate"]),
        _n(node["memory"]),
        tuple(pods),
    )


def _pack(u: NodeUsage) -> bytes:
    """A checked report as compact JSON arrays (≈ 1/3 of the same data as tuples of Python objects)."""
    pods = [[p.namespace, p.name, p.uid, [list(c) for c in p.containers]] for p in u.pods]
    # stdlib json, not orjson: orjson's result keeps a 4 KiB allocation behind each small bytes object
    return json.dumps(
        [u.time_ms, u.window_ms, u.cpu_ns, u.cpu_rate, u.memory, pods], separators=(",", ":")
    ).encode()


def _unpack(raw: bytes) -> NodeUsage:
    t, w, cpu, rate, mem, pods = json.loads(raw)
    return NodeUsage(t, w, cpu, rate, mem, tuple(
        PodUsage(ns, name, uid, tuple(ContainerUsage(*c) for c in cs)) for ns, name, uid, cs in pods
    ))  # fmt: skip


class UsageStore:
    """The last report per node, kept packed (_pack); ``get`` unpacks on the rare read (kubectl top,
    a scrape)."""

    def __init__(self) -> None:
        self.nodes: dict[str, bytes] = {}
        self.ips: dict[str, str] = {}  # node -> the InternalIP it reports (finds the node of a scrape)
        self.received = self.refused = 0

    async def on_message(self, node: str, msg: Message) -> None:
        owner, rest = strip_node_prefix(msg.resource)
        r = parse_resource(rest)
        if r is None or r.type != RT_NODEUSAGE:
            return
        if (owner is not None and owner != node) or r.name != node:
            self.refused += 1  # a node reports for itself only
            return
        try:
            self.nodes[node] = _pack(parse_report(msg.content))
            ip = msg.content.get("ip")
            if isinstance(ip, str) and 0 < len(ip) <= 45:
                self.ips[node] = ip
            self.received += 1
        except (ValueError, KeyError, TypeError) as exc:
            self.refused += 1
            log.debug("edge %s: usage report refused: %s", node, exc)

    async def on_disconnect(self, info: SessionInfo) -> None:
        self.nodes.pop(info.node, None)
        self.ips.pop(info.node, None)

    def node_at(self, ip: str) -> str | None:
        """The one connected node reporting this InternalIP; None for none or several (NAT, tests)."""
        found = [n for n, a in self.ips.items() if a == ip]
        return found[0] if len(found) == 1 else None

    def get(self, node: str) -> NodeUsage | None:
        raw = self.nodes.get(node)
        return _unpack(raw) if raw is not None else None

    def items(self) -> list[tuple[str, NodeUsage]]:
        return [(node, _unpack(raw)) for node, raw in list(self.nodes.items())]


class UsageMetrics(Collector):
    """``kedge_cloud_usage_reports_total{outcome}`` and ``kedge_cloud_usage_nodes`` (no per-node label)."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        reports = CounterMetricFamily(
            "kedge_cloud_usage_reports", "Resource usage reports from edges, by outcome", labels=["outcome"]
        )
        reports.add_metric(["received"], self.store.received)
        reports.add_metric(["refused"], self.store.refused)
        yield reports
        yield GaugeMetricFamily(
            "kedge_cloud_usage_nodes",
            "Connected nodes whose resource usage this cloud holds",
            value=len(self.store.nodes),
        )
