"""The cloud's kubelet view of the edges' usage (issue 20): UsageStore keeps what edges report (checked,
bounded, per node, gone at disconnect), and a scraper that requests what metrics-server requests —
`GET /metrics/resource` (metrics-server ≥ 0.6) and `GET /stats/summary?only_cpu_and_memory=true`
(older ones), decoded by the rules of metrics-server's decoders — gets usable points, with rates taken
between two scrapes from the samples' own timestamps."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runtime.cloud.hub.session import SessionInfo
from runtime.cloud.usage import UsageStore, add_routes
from runtime.cloud.usage.store import MAX_CONTAINERS
from runtime.edge.usage import usage_message
from tests.fixtures.promcheck import declared, documented, families, lint

NODE = "edge-1"


def report(t_ms: int, cpu_ns: int, containers: int = 1) -> dict[str, Any]:
    return {
        "time": t_ms,
        "window": 15000,
        "node": {"cpu": 100 * cpu_ns, "cpuRate": 250_000_000, "memory": 2 << 30},
        "pods": [
            {
                "namespace": "shop",
                "name": f"web-{i}",
                "uid": f"u{i}",
                "containers": [
                    {
                        "name": "app",
                        "start": 1_700_000_000,
                        "cpu": cpu_ns,
                        "cpuRate": 500_000_000,
                        "memory": 64 << 20,
                    },
                ],
            }
            for i in range(containers)
        ],
    }


def msg(body: Any, node: str = NODE, prefix: str = "") -> Any:
    m = usage_message(node, body)
    m.resource = prefix + m.resource
    return m


def info(node: str) -> SessionInfo:
    return SessionInfo(
        node=node, project_id="e", peer_kind="kedge", version="x", epoch="", remote="", since=0
    )


async def test_the_store_keeps_the_last_report_per_node_and_drops_it_at_disconnect() -> None:
    store = UsageStore()
    await store.on_message(NODE, msg(report(1000, 10**9), prefix=f"node/{NODE}/"))
    await store.on_message(NODE, msg(report(2000, 2 * 10**9)))
    u = store.get(NODE)
    assert u is not None and u.time_ms == 2000 and u.pods[0].containers[0].cpu_ns == 2 * 10**9
    await store.on_disconnect(info(NODE))
    assert store.get(NODE) is None and store.received == 2


@pytest.mark.parametrize(
    "body,node",
    [
        (report(1, 1), "edge-2"),  # a node reports for itself only
        ({"time": 1, "window": 1, "node": {"cpu": -1, "cpuRate": 0, "memory": 0}}, NODE),
        ({"time": 1, "window": 1, "node": {"cpu": 1, "cpuRate": 0, "memory": "x"}}, NODE),
        ({**report(1, 1), "pods": [{"namespace": "a", "name": "b", "uid": "c"}]}, NODE),
        (report(1, 1, containers=MAX_CONTAINERS + 1), NODE),
        ("not an object", NODE),
    ],
)
async def test_malformed_or_foreign_reports_are_refused(body: Any, node: str) -> None:
    store = UsageStore()
    await store.on_message(NODE, msg(body, node=node))
    assert store.get(NODE) is None and store.refused == 1


@pytest.fixture
async def kubelet() -> AsyncIterator[tuple[UsageStore, str]]:
    """The kubelet routes mounted as a kubelet-like endpoint would: the node comes from the request."""
    store = UsageStore()
    app = web.Application()
    add_routes(app, store, lambda request: request.headers.get("X-Node", NODE))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def decode_resource(
    text: str,
) -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str, str], dict[str, float]]]:
    """metrics-server's resource decoder: node {series: (value, ts)}, containers by (ns, pod, name)."""
    node: dict[str, tuple[float, float]] = {}
    containers: dict[tuple[str, str, str], dict[str, float]] = {}
    for fam in families(text):
        for s in fam.samples:
            if s.name == "scrape_error":
                continue
            assert s.timestamp is not None, f"{s.name} without a timestamp"
            if s.name in ("node_cpu_usage_seconds_total", "node_memory_working_set_bytes"):
                node[s.name] = (s.value, float(s.timestamp))
            elif s.name.startswith("container_"):
                key = (s.labels["namespace"], s.labels["pod"], s.labels["container"])
                containers.setdefault(key, {})[s.name] = s.value
                containers[key]["ts"] = float(s.timestamp)
    return node, containers


async def test_a_metrics_server_scrape_of_metrics_resource(kubelet: tuple[UsageStore, str]) -> None:
    store, url = kubelet
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics/resource") as resp:  # nothing reported: scrape_error 1
            text = await resp.text()
        assert resp.status == 200 and "scrape_error 1.0" in text and "node_cpu" not in text
        points = []
        for t_ms, cpu in ((1_700_000_015_000, 3 * 10**9), (1_700_000_030_000, 6 * 10**9)):
            await store.on_message(NODE, msg(report(t_ms, cpu)))
            async with http.get(url + "/metrics/resource") as resp:
                assert resp.status == 200 and resp.content_type == "text/plain"
                text = await resp.text()
            assert lint(text) == []
            points.append(decode_resource(text))
    (n1, c1), (n2, c2) = points
    # metrics-server drops points with zero CPU or memory and needs every series of a container
    key = ("shop", "web-0", "app")
    for series in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                   "container_start_time_seconds"):  # fmt: skip
        assert c2[key][series] > 0
    # its rate: Δcpu / Δtimestamp of the two scrapes' samples
    rate = (c2[key]["container_cpu_usage_seconds_total"] - c1[key]["container_cpu_usage_seconds_total"]) / (
        c2[key]["ts"] - c1[key]["ts"]
    )
    assert rate == pytest.approx(0.2)  # 3 CPU-seconds over 15 s
    assert n2["node_memory_working_set_bytes"][0] == 2 << 30
    assert n2["node_cpu_usage_seconds_total"][1] - n1["node_cpu_usage_seconds_total"][1] == 15.0


async def test_a_summary_scrape_decodes_as_metrics_server_decodes_it(kubelet: tuple[UsageStore, str]) -> None:
    store, url = kubelet
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/stats/summary", params={"only_cpu_and_memory": "true"}) as resp:
            assert resp.status == 503  # no report (yet): no zeros that would read as usage
        body = copy.deepcopy(report(1_700_000_015_000, 3 * 10**9, containers=2))
        await store.on_message(NODE, msg(body))
        async with http.get(url + "/stats/summary", params={"only_cpu_and_memory": "true"}) as resp:
            summary = await resp.json()
    node = summary["node"]
    assert node["nodeName"] == NODE and node["cpu"]["time"] == "2023-11-14T22:13:35Z"
    assert node["cpu"]["usageCoreNanoSeconds"] > 0 and node["memory"]["workingSetBytes"] == 2 << 30
    assert [p["podRef"] for p in summary["pods"]] == [
        {"name": "web-0", "namespace": "shop", "uid": "u0"},
        {"name": "web-1", "namespace": "shop", "uid": "u1"},
    ]
    for pod in summary["pods"]:
        [c] = pod["containers"]
        assert c["name"] == "app" and c["startTime"] == "2023-11-14T22:13:20Z"
        assert c["cpu"]["time"] and c["cpu"]["usageCoreNanoSeconds"] == 3 * 10**9
        assert c["cpu"]["usageNanoCores"] == 500_000_000 and c["memory"]["workingSetBytes"] == 64 << 20


async def test_each_node_is_answered_for_itself(kubelet: tuple[UsageStore, str]) -> None:
    store, url = kubelet
    await store.on_message("edge-2", msg(report(1_700_000_015_000, 7 * 10**9), node="edge-2"))
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics/resource", headers={"X-Node": "edge-2"}) as resp:
            two = await resp.text()
        async with http.get(url + "/metrics/resource") as resp:
            one = await resp.text()
    assert "container_cpu_usage_seconds_total" in two and "scrape_error 0.0" in two
    assert "scrape_error 1.0" in one


def test_the_kubelet_series_are_the_documented_ones() -> None:
    from runtime.cloud.usage import resource_metrics
    from runtime.cloud.usage.store import parse_report

    text = resource_metrics(parse_report(report(1_700_000_015_000, 3 * 10**9))).decode()
    assert lint(text) == []
    assert set(declared(text)) == set(documented("kubelet"))
    for fam in families(text):
        for s in fam.samples:
            want = documented("kubelet")[s.name]
            assert set(s.labels) == want, (s.name, s.labels)


@pytest.fixture
async def stream_endpoint(tls_certs: Any) -> AsyncIterator[tuple[UsageStore, str]]:
    """The cloud's real stream endpoint (TLS, client certificate of the CA with a listed CN), with the
    usage reads mounted as `kedge cloud run` mounts them."""
    from runtime.cloud.streams.endpoint import StreamEndpoint
    from runtime.cloud.usage.kubelet import by_address
    from runtime.pki import certs, tls

    store = UsageStore()
    cert, key = tls_certs.server.der()
    sslctx = tls.client_ca_server_context(cert, key, certs.cert_pem(tls_certs.authority.cert).decode())

    async def no_pods(ns: str, name: str) -> dict[str, Any]:
        raise AssertionError("a usage read looks up no pod")

    endpoint = StreamEndpoint(None, no_pods, sslctx, ["metrics-server"], by_address(store))  # type: ignore[arg-type]
    port = await endpoint.start("127.0.0.1", 0)
    try:
        yield store, f"https://127.0.0.1:{port}"
    finally:
        await endpoint.stop()


async def test_metrics_server_scrapes_each_node_through_the_stream_endpoint(
    stream_endpoint: tuple[UsageStore, str], tls_certs: Any
) -> None:
    """What metrics-server does against a node whose kubelet address the cloud wrote (dnat mode: the
    edge's InternalIP and the tunnel port): GET https://<InternalIP>:<port>/metrics/resource — the
    DNAT brings it to the stream endpoint, the Host header still names the node's address."""
    import httpx

    store, url = stream_endpoint
    for node, ip, cpu in (("edge-1", "192.0.2.7", 3 * 10**9), ("edge-2", "192.0.2.8", 7 * 10**9)):
        await store.on_message(node, msg({**report(1_700_000_015_000, cpu), "ip": ip}, node=node))
    scraper = tls_certs.client_context(tls_certs.client("ms", cn="metrics-server"))
    async with httpx.AsyncClient(verify=scraper, base_url=url) as http:
        one = await http.get("/metrics/resource", headers={"Host": "192.0.2.7:10351"})
        two = await http.get("/metrics/resource", headers={"Host": "192.0.2.8:10351"})
        summ = await http.get("/stats/summary?only_cpu_and_memory=true", headers={"Host": "192.0.2.8:10351"})
        unknown = await http.get("/metrics/resource", headers={"Host": "192.0.2.99:10351"})
    assert one.status_code == 200 and one.headers["content-type"].startswith("text/plain")
    _, c1 = decode_resource(one.text)
    _, c2 = decode_resource(two.text)
    assert c1[("shop", "web-0", "app")]["container_cpu_usage_seconds_total"] == 3.0
    assert c2[("shop", "web-0", "app")]["container_cpu_usage_seconds_total"] == 7.0
    assert summ.status_code == 200 and summ.json()["node"]["nodeName"] == "edge-2"
    assert unknown.status_code == 404 and "192.0.2.99" in unknown.text
    stranger = tls_certs.client_context(tls_certs.client("x", cn="someone-else"))
    async with httpx.AsyncClient(verify=stranger, base_url=url) as http:
        refused = await http.get("/metrics/resource", headers={"Host": "192.0.2.7:10351"})
    assert refused.status_code == 403


async def test_the_cloud_counts_reports_without_a_per_node_label() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from runtime.cloud.usage.store import UsageMetrics

    store, registry = UsageStore(), CollectorRegistry()
    registry.register(UsageMetrics(store))
    await store.on_message(NODE, msg(report(1000, 10**9)))
    await store.on_message("edge-2", msg(report(1000, 10**9), node="edge-2"))
    await store.on_message(NODE, msg("garbage"))
    text = generate_latest(registry).decode()
    assert lint(text) == []
    samples = {(s.name, tuple(s.labels.items())): s.value for f in families(text) for s in f.samples}
    assert samples[("kedge_cloud_usage_reports_total", (("outcome", "received"),))] == 2
    assert samples[("kedge_cloud_usage_reports_total", (("outcome", "refused"),))] == 1
    assert samples[("kedge_cloud_usage_nodes", ())] == 2
    assert NODE not in text and "edge-2" not in text
    for name, labels in documented("cloud").items():
        if name.startswith("kedge_cloud_usage"):
            assert any(s.name == name and set(s.labels) == labels for f in families(text) for s in f.samples)


async def test_pod_names_and_uids_are_not_interned_and_an_edge_holds_under_2_kb() -> None:
    """Interning every pod's name and uid grew CPython's interned-strings dict (which never shrinks)
    by ≈ 940 B per 10-pod edge: the store keeps its packed record only."""
    import gc
    import sys
    import tracemalloc
    import uuid

    body = report(1_765_000_000_000, 10**9, containers=10)
    for p in body["pods"]:
        p["uid"] = uuid.uuid4().hex
    store = UsageStore()
    await store.on_message(NODE, msg(body))
    uid = body["pods"][0]["uid"]  # alive: had the store interned it, sys.intern of an equal string finds it
    twin = "".join(list(uid))
    assert sys.intern(twin) is twin

    gc.collect()
    tracemalloc.start()
    store, base = UsageStore(), tracemalloc.get_traced_memory()[0]
    for e in range(1000):
        body = report(1_765_000_000_000 + e, 10**9 + e, containers=10)
        for p in body["pods"]:
            p["name"], p["uid"] = f"app-{e}-{p['name']}", uuid.uuid4().hex
        await store.on_message(f"edge-{e:05d}", msg(body, node=f"edge-{e:05d}"))
    gc.collect()
    per_edge = (tracemalloc.get_traced_memory()[0] - base) / 1000
    tracemalloc.stop()
    assert len(store.nodes) == 1000 and per_edge < 2048, per_edge
