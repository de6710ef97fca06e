"""metrics.k8s.io/v1beta1 on the embedded API server (issue 20), in-process: the cloud's real status
socket routes (a real UsageStore fed with edge reports) on a unix socket, the API server reading them
through --usage-socket. kubectl against the whole product is tests/e2e/test_top.py."""

from __future__ import annotations

import base64
import contextlib
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from runtime.cloud.usage import UsageStore
from runtime.cloud.usage.kubelet import add_usage
from runtime.edge.usage import usage_message
from tests.fixtures.controlplane import embedded_apiserver

M = "/apis/metrics.k8s.io/v1beta1"


def _report(pods: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "time": 1_700_000_015_000, "window": 15000,
        "node": {"cpu": 9 * 10**9, "cpuRate": 250_000_000, "memory": 3 << 30},
        "pods": [{"namespace": ns, "name": name, "uid": uid, "containers": [
            {"name": "app", "start": 1_700_000_000, "cpu": 10**9, "cpuRate": 123_456_789, "memory": 10 << 20},
            {"name": "side", "start": 1_700_000_000, "cpu": 10**9, "cpuRate": 1_000_000, "memory": 1000},
        ]} for ns, name, uid in pods],
    }  # fmt: skip


@contextlib.asynccontextmanager
async def cloud_socket(store: UsageStore) -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kedge-usage-") as d:  # AF_UNIX paths are short
        path = Path(d) / "cloud.sock"
        app = web.Application()
        add_usage(app, store)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.UnixSite(runner, str(path)).start()
        try:
            yield path
        finally:
            await runner.cleanup()


def _client(kubeconfig: Path) -> httpx.AsyncClient:
    doc = yaml.safe_load(kubeconfig.read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    ca = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return httpx.AsyncClient(
        base_url=cluster["server"], verify=ca, headers={"Authorization": f"Bearer {user['token']}"}
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, UsageStore]]:
    store = UsageStore()
    async with cloud_socket(store) as sock, embedded_apiserver(tmp_path / "api", usage_socket=sock) as kc:
        async with _client(kc) as http:
            yield http, store


async def _create(http: httpx.AsyncClient, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post(path, json=obj)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_discovery_lists_the_group_and_its_resources(api: tuple[httpx.AsyncClient, UsageStore]) -> None:
    http, _ = api
    groups = (await http.get("/apis")).json()["groups"]
    assert any(
        g["name"] == "metrics.k8s.io" and g["preferredVersion"]["version"] == "v1beta1" for g in groups
    )
    res = (await http.get(M)).json()
    assert res["groupVersion"] == "metrics.k8s.io/v1beta1"
    assert {(r["name"], r["kind"], r["namespaced"], tuple(r["verbs"])) for r in res["resources"]} == {
        ("nodes", "NodeMetrics", False, ("get", "list")),
        ("pods", "PodMetrics", True, ("get", "list")),
    }


async def test_node_and_pod_metrics_follow_the_stored_objects(
    api: tuple[httpx.AsyncClient, UsageStore],
) -> None:
    http, store = api
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-1", "labels": {"zone": "a"}}}
    await _create(http, "/api/v1/nodes", node)
    pods = []
    for name, labels in (("web", {"app": "web"}), ("db", {"app": "db"})):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
               "spec": {"nodeName": "edge-1", "containers": [{"name": "app", "image": "x"}]}}  # fmt: skip
        pods.append(await _create(http, "/api/v1/namespaces/default/pods", pod))
    reported = [("default", p["metadata"]["name"], p["metadata"]["uid"]) for p in pods]
    reported.append(("default", "gone", "uid-of-a-deleted-pod"))  # the server does not hold it: no metrics
    await store.on_message("edge-1", usage_message("edge-1", _report(reported)))
    await store.on_message("edge-2", usage_message("edge-2", _report([])))  # a node without a Node object

    nodes = (await http.get(f"{M}/nodes")).json()
    assert nodes["kind"] == "NodeMetricsList" and [i["metadata"]["name"] for i in nodes["items"]] == [
        "edge-1"
    ]
    one = (await http.get(f"{M}/nodes/edge-1")).json()
    assert one["usage"] == {"cpu": "250000000n", "memory": f"{3 << 20}Ki"} and one["window"] == "15s"
    assert one["metadata"]["labels"] == {"zone": "a"} and one["timestamp"] == "2023-11-14T22:13:35Z"
    assert (await http.get(f"{M}/nodes", params={"labelSelector": "zone=b"})).json()["items"] == []

    listed = (await http.get(f"{M}/namespaces/default/pods")).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["db", "web"]
    web_ = (await http.get(f"{M}/namespaces/default/pods/web")).json()
    assert web_["kind"] == "PodMetrics" and web_["metadata"]["labels"] == {"app": "web"}
    assert web_["containers"] == [
        {"name": "app", "usage": {"cpu": "123456789n", "memory": "10240Ki"}},
        {"name": "side", "usage": {"cpu": "1000000n", "memory": "1000"}},
    ]
    by_label = (await http.get(f"{M}/namespaces/default/pods", params={"labelSelector": "app=db"})).json()
    assert [i["metadata"]["name"] for i in by_label["items"]] == ["db"]
    by_field = (await http.get(f"{M}/pods", params={"fieldSelector": "metadata.name=web"})).json()
    assert [i["metadata"]["name"] for i in by_field["items"]] == ["web"]
    assert (await http.get(f"{M}/namespaces/other/pods")).json()["items"] == []

    missing = await http.get(f"{M}/namespaces/default/pods/gone")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    bad = await http.get(f"{M}/pods", params={"fieldSelector": "spec.nodeName=x"})
    assert bad.status_code == 400
    assert (await http.delete(f"{M}/nodes/edge-1")).status_code == 405


async def test_no_cloud_means_no_metrics_yet(tmp_path: Path) -> None:
    async with embedded_apiserver(tmp_path / "api", usage_socket=tmp_path / "absent.sock") as kc:
        async with _client(kc) as http:
            resp = await http.get(f"{M}/nodes")
    assert resp.status_code == 200 and resp.json()["items"] == []


async def test_without_a_usage_socket_the_group_is_not_served(tmp_path: Path) -> None:
    async with embedded_apiserver(tmp_path / "api") as kc:
        async with _client(kc) as http:
            groups = (await http.get("/apis")).json()["groups"]
            resp = await http.get(f"{M}/nodes")
    assert all(g["name"] != "metrics.k8s.io" for g in groups) and resp.status_code == 404
