"""Every /metrics endpoint as a process serves it: the cloud (`kedge cloud run`), an edge joined to it
(`kedge join` → `kedge edge run`, on 127.0.0.1 at the configured metrics_address) and the embedded API
server. Each parses with prometheus_client's text parser, passes promtool's checks
(tests/fixtures/promcheck.py) and carries every series docs/metrics.md documents for its role."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from runtime.kube.client import KubeClient
from tests.fixtures import promcheck
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import real_cloud_join_args
from tests.fixtures.procs import KEDGE, Spawner
from tests.fixtures.wait import eventually_async


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEDGE, *args], capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listeners(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp) listening on ``port``."""
    rows = [ln.split() for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return [r[1].split(":")[0] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]


def check(role: str, text: str) -> dict[str, str]:
    """Parses, lints clean, documents-and-serves: every documented series is declared with only its
    documented labels. Returns the declared {name: type}."""
    fams = promcheck.families(text)
    assert fams, f"{role}: empty exposition"
    assert promcheck.lint(text) == [], f"{role}: promtool problems"
    declared = promcheck.declared(text)
    docs = promcheck.documented(role)
    assert docs, f"docs/metrics.md documents no {role} series"
    missing = sorted(set(docs) - set(declared))
    assert missing == [], f"{role}: documented but not served: {missing}"
    for fam in fams:
        for s in fam.samples:
            base = next((d for d in docs if s.name == d or s.name.startswith(d + "_")), None)
            if base is not None and not s.name.endswith("_created"):
                assert set(s.labels) - {"le", "quantile"} <= docs[base], (s.name, s.labels)
    return declared


def value(text: str, name: str, **labels: str) -> float:
    for fam in promcheck.families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


@pytest.mark.docker  # `kedge join` checks the Docker engine (preflight)
async def test_cloud_and_edge_metrics_parse_lint_and_match_the_docs(
    apiserver: ApiServer, kube: KubeClient, spawn: Spawner, tmp_path: Path
) -> None:
    eroot = tmp_path / "edge"
    log, addr, args = await real_cloud_join_args(
        apiserver.kubeconfig, kube, spawn, tmp_path / "cloud", "metrics-1"
    )
    edge_port = free_port()
    args += ["--root", str(eroot), "--set", f"metrics_address=:{edge_port}"]
    try:
        done = await asyncio.to_thread(run, *args)
        assert done.returncode == 0, done.stderr + "\n--- cloud ---\n" + log.read_text()[-3000:]
        async with httpx.AsyncClient(timeout=10) as http:
            # a bare ":port" binds loopback
            edge_url = f"http://127.0.0.1:{edge_port}/metrics"

            async def edge_has_talked() -> str | None:
                text = (await http.get(edge_url)).text
                sent = sum(
                    s.value
                    for f in promcheck.families(text)
                    for s in f.samples
                    if s.name == "kedge_edge_messages_total" and s.labels.get("direction") == "sent"
                )
                return text if sent > 0 and value(text, "kedge_edge_cloud_connected") == 1 else None

            edge = await eventually_async(edge_has_talked, within=30.0, what="edge messages counted")

            async def cloud_has_usage() -> str | None:  # the edge's first usage report (2 s after start)
                text = (await http.get(f"http://{addr['health']}/metrics")).text
                return (
                    text if value(text, "kedge_cloud_usage_reports_total", outcome="received") > 0 else None
                )

            cloud = await eventually_async(
                cloud_has_usage, within=30.0, what="the edge's usage report counted"
            )
        edge_types = check("edge", edge)
        assert edge_types["kedge_edge_pod_sync_duration_seconds"] == "histogram"
        assert value(edge, "kedge_edge_messages_total", direction="received") > 0
        assert value(edge, "kedge_edge_process_resident_memory_bytes") > 1e6
        check("cloud", cloud)
        # bounded for 10,000 edges: no label names a node, a pod or anything else per edge
        cloud_labels = {k for f in promcheck.families(cloud) for smp in f.samples for k in smp.labels}
        bounded = {"operation", "type", "reason", "event", "endpoint", "code", "version", "le", "outcome"}
        assert cloud_labels <= bounded
        assert value(cloud, "kedge_cloud_usage_nodes") == 1
        assert value(cloud, "kedge_cloud_usage_reports_total", outcome="refused") == 0
        assert value(cloud, "kedge_cloudhub_connected_edges") == 1
        assert value(cloud, "kedge_cloudhub_sessions_opened_total") >= 1
        assert value(cloud, "kedge_cloudhub_messages_received_total") > 0
        # loopback only: the edge listens on 127.0.0.1, not on the machine's other addresses
        assert await asyncio.to_thread(listeners, edge_port) == ["0100007F"]
    finally:
        r = await asyncio.to_thread(run, "reset", "edge", "--force", "--root", str(eroot))
    assert r.returncode == 0, r.stdout + r.stderr


async def test_apiserver_metrics_count_requests_by_verb_and_resource(apiserver: ApiServer) -> None:
    if not apiserver.embedded:
        pytest.skip("KEDGE_TEST_KUBECONFIG names another API server; /metrics here is kedge's own")
    auth = {"Authorization": f"Bearer {apiserver.token}"}
    async with httpx.AsyncClient(
        base_url=apiserver.url, verify=ssl.create_default_context(cafile=apiserver.ca_file), timeout=10
    ) as c:
        assert (await c.get("/metrics")).status_code == 401  # as kube-apiserver: not for anonymous
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m1"}, "data": {"k": "v"}}
        assert (
            await c.post("/api/v1/namespaces/default/configmaps", json=cm, headers=auth)
        ).status_code == 201
        assert (await c.get("/api/v1/namespaces/default/configmaps", headers=auth)).status_code == 200
        assert (await c.get("/api/v1/namespaces/default/configmaps/nope", headers=auth)).status_code == 404
        resp = await c.get("/metrics", headers=auth)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = resp.text
    check("apiserver", text)
    base = {"group": "", "resource": "configmaps", "subresource": ""}
    assert value(text, "kedge_apiserver_requests_total", verb="create", code="201", **base) == 1
    assert value(text, "kedge_apiserver_requests_total", verb="get", code="404", **base) == 1
    assert value(text, "kedge_apiserver_request_duration_seconds_count", verb="list", **base) == 1
    assert value(text, "kedge_apiserver_requests_in_flight") == 1  # this scrape itself
