"""What a kubelet answers about resource usage, for one node, from its last report (store.py).

`/metrics/resource` — kubelet's resource metrics (Prometheus text, made by prometheus_client): the
series metrics-server ≥ 0.6 reads, each sample carrying the time it was taken (metrics-server takes
rates between two scrapes from these timestamps): node_cpu_usage_seconds_total,
node_memory_working_set_bytes, container_cpu_usage_seconds_total / container_memory_working_set_bytes
/ container_start_time_seconds {container, namespace, pod}, pod_cpu_usage_seconds_total /
pod_memory_working_set_bytes {namespace, pod}, scrape_error.

`/stats/summary` — kubelet's Summary (stats/v1alpha1) with the CPU and memory fields metrics-server's
summary client decodes (`only_cpu_and_memory=true` is all kedge has anyway).

`add_routes(app, store, node_of, prefix)` mounts both; `node_of(request)` names the node a request is
for (a path segment on the cloud's status socket; the connection's node on a kubelet-like endpoint).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from runtime.cloud.usage.store import NodeUsage, UsageStore

_C = ("container", "namespace", "pod")
_P = ("namespace", "pod")


def _rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Collector(Collector):
    def __init__(self, u: NodeUsage | None) -> None:
        self.u = u

    def collect(self) -> Iterator[Metric]:
        u = self.u
        err = GaugeMetricFamily(
            "scrape_error", "1 if there was an error while getting container metrics, 0 otherwise"
        )
        err.add_metric([], 0.0 if u is not None else 1.0)
        yield err
        if u is None:
            return
        ts = u.time_ms / 1000
        ncpu = CounterMetricFamily(
            "node_cpu_usage_seconds", "Cumulative cpu time consumed by the node in core-seconds"
        )
        ncpu.add_metric([], u.cpu_ns / 1e9, timestamp=ts)
        nmem = GaugeMetricFamily("node_memory_working_set_bytes", "Current working set of the node in bytes")
        nmem.add_metric([], float(u.memory), timestamp=ts)
        ccpu = CounterMetricFamily(
            "container_cpu_usage_seconds",
            "Cumulative cpu time consumed by the container in core-seconds",
            labels=_C,
        )
        cmem = GaugeMetricFamily(
            "container_memory_working_set_bytes", "Current working set of the container in bytes", labels=_C
        )
        cstart = GaugeMetricFamily(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds",
            labels=_C,
        )
        pcpu = CounterMetricFamily(
            "pod_cpu_usage_seconds", "Cumulative cpu time consumed by the pod in core-seconds", labels=_P
        )
        pmem = GaugeMetricFamily(
            "pod_memory_working_set_bytes", "Current working set of the pod in bytes", labels=_P
        )
        for p in u.pods:
            for c in p.containers:
                labels = [c.name, p.namespace, p.name]
                ccpu.add_metric(labels, c.cpu_ns / 1e9, timestamp=ts)
                cmem.add_metric(labels, float(c.memory), timestamp=ts)
                cstart.add_metric(labels, float(c.start), timestamp=ts)
            pcpu.add_metric([p.namespace, p.name], sum(c.cpu_ns for c in p.containers) / 1e9, timestamp=ts)
            pmem.add_metric([p.namespace, p.name], float(sum(c.memory for c in p.containers)), timestamp=ts)
        yield from (ncpu, nmem, ccpu, cmem, cstart, pcpu, pmem)


def resource_metrics(u: NodeUsage | None) -> bytes:
    """kubelet's /metrics/resource for one node (scrape_error 1 and nothing else without a report)."""
    registry = CollectorRegistry()
    registry.register(_Collector(u))
    return generate_latest(registry)


def _stats(ms: int, cpu_ns: int, rate: int, memory: int) -> dict[str, Any]:
    t = _rfc3339(ms)
    return {
        "cpu": {"time": t, "usageNanoCores": rate, "usageCoreNanoSeconds": cpu_ns},
        "memory": {"time": t, "workingSetBytes": memory},
    }


def summary(node: str, u: NodeUsage) -> dict[str, Any]:
    """kubelet's Summary (stats/v1alpha1): node, then pods with their containers (CPU and memory)."""
    pods = []
    for p in u.pods:
        cs = p.containers
        start = _rfc3339(min(c.start for c in cs) * 1000) if cs else _rfc3339(u.time_ms)
        pods.append(
            {
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "startTime": start,
                "containers": [
                    {
                        "name": c.name,
                        "startTime": _rfc3339(c.start * 1000),
                        **_stats(u.time_ms, c.cpu_ns, c.cpu_rate, c.memory),
                    }
                    for c in cs
                ],
                **_stats(
                    u.time_ms,
                    sum(c.cpu_ns for c in cs),
                    sum(c.cpu_rate for c in cs),
                    sum(c.memory for c in cs),
                ),
            }
        )
    node_stats = {"nodeName": node, **_stats(u.time_ms, u.cpu_ns, u.cpu_rate, u.memory)}
    return {"node": node_stats, "pods": pods, "window": f"{u.window_ms / 1000:g}s"}


PATHS = ("/metrics/resource", "/stats/summary")
Answer = tuple[int, str, bytes]  # (status, content type, body)


def answer(store: UsageStore, node: str, path: str) -> Answer:
    """kubelet's answer for ``path`` (one of PATHS) about ``node``."""
    if path == "/metrics/resource":
        return 200, CONTENT_TYPE_LATEST, resource_metrics(store.get(node))
    u = store.get(node)
    if u is None:  # no zeros that a scraper would take for usage (kubelet: 500 without stats)
        return 503, "text/plain", f"no resource usage reported by node {node} (not connected?)\n".encode()
    return 200, "application/json", json.dumps(summary(node, u)).encode()


def by_address(store: UsageStore) -> Callable[[str, str], Answer]:
    """For a kubelet-like endpoint many nodes share (the stream endpoint): the node is the one whose
    InternalIP the request's Host names — what metrics-server and an API server's node proxy dial."""

    def reads(host: str, path: str) -> Answer:
        ip = host.rsplit(":", 1)[0] if host.count(":") == 1 else host.rpartition("]")[0] or host
        ip = ip.strip("[]")
        node = store.node_at(ip)
        if node is None:
            return 404, "text/plain", f"no edge node with address {ip!r} reports its usage here\n".encode()
        return answer(store, node, path)

    return reads


def add_routes(app: Any, store: UsageStore, node_of: Callable[[Any], str], prefix: str = "") -> None:
    """GET <prefix>/metrics/resource and <prefix>/stats/summary on an aiohttp app."""
    from aiohttp import web

    def route(path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            status, ctype, body = answer(store, node_of(request), path)
            return web.Response(status=status, body=body, headers={"Content-Type": ctype})

        return handle

    for path in PATHS:
        app.router.add_get(prefix + path, route(path))


def add_usage(app: Any, store: UsageStore) -> None:
    """GET /usage: every reporting node's Summary at once (the embedded API server's source)."""
    from aiohttp import web

    async def usage(_: web.Request) -> web.Response:
        items = [summary(node, u) for node, u in store.items()]
        return web.json_response({"items": items})

    app.router.add_get("/usage", usage)
