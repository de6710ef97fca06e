"""`kedge cloud run` as a process (health, metrics, bootstrap, SIGTERM) and the serving-cert lifecycle."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import ssl
from pathlib import Path

import httpx

from runtime.cloud import cloudcore as cloud_run
from runtime.cloud.context import CloudContext, build_context
from runtime.cloud.pki_store import PKIStore
from runtime.config import CloudConfig
from runtime.kube.client import KubeClient
from runtime.pki import certs, tls
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import spawn_cloud
from tests.fixtures.cloudinit import ensure_namespace
from tests.fixtures.procs import Spawner
from tests.fixtures.wait import eventually_async


async def test_cloud_run_serves_health_metrics_bootstrap_and_stops_on_sigterm(
    apiserver: ApiServer, kube: KubeClient, spawn: Spawner, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    sets = ["hub.cert_port=0", "hub.websocket_port=0", "metrics_address=127.0.0.1:0", "stream.port=0",
            "advertise_addresses=127.0.0.1,cloud.test"]  # fmt: skip
    proc, _log, data = spawn_cloud(spawn, apiserver.kubeconfig, root, sets, ready="")
    health = "http://" + data["health"]
    async with httpx.AsyncClient(base_url=health, timeout=5) as plain:
        assert (await plain.get("/healthz")).status_code == 200
        not_ready: list[httpx.Response] = []

        async def readyz() -> httpx.Response | None:  # the hub may bind a moment after health and bootstrap
            got = await plain.get("/readyz")
            if got.status_code == 200:
                return got
            not_ready.append(got)
            return None

        ready = await eventually_async(readyz, within=10, what="/readyz 200")
        assert all(r.status_code == 503 and "not ready" in r.text for r in not_ready)
        assert ready.status_code == 200 and "[+]bootstrap ok" in ready.text, ready.text
        text = (await plain.get("/metrics")).text
    assert "kedge_cloud_serving_cert_expiry_timestamp_seconds" in text
    # the bootstrap server presents the serving certificate from the persisted CA, SANs as advertised
    store = PKIStore(kube)
    ca = await store.load_ca()
    assert ca is not None
    port = int(data["bootstrap"].rpartition(":")[2])
    async with httpx.AsyncClient(verify=tls.client_context(ca.cert_der), timeout=10) as c:
        resp = await c.get(f"https://127.0.0.1:{port}/ca.crt")
    assert resp.content == ca.cert_der
    peer = ssl.get_server_certificate(("127.0.0.1", port))
    assert certs.sans_of(certs.load_cert(peer.encode())) == {"127.0.0.1", "cloud.test"}
    async with httpx.AsyncClient(base_url=health, timeout=5) as plain:
        metrics = (await plain.get("/metrics")).text
    assert 'kedge_bootstrap_requests_total{code="200",endpoint="ca.crt"} 1.0' in metrics
    # graceful stop
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 15) == 0
    assert not (root / "var" / "lib" / "kedge" / "cloud" / "addresses.json").exists()


async def test_serving_certificate_reissued_near_expiry_or_on_new_addresses(kube: KubeClient) -> None:
    store = PKIStore(kube)
    ca = await store.ensure_ca()
    first, _ = await store.ensure_serving(ca, ["127.0.0.1"])
    same, _ = await store.ensure_serving(ca, ["127.0.0.1"])
    assert same == first
    moved, _ = await store.ensure_serving(ca, ["127.0.0.1", "10.1.1.1"])
    assert moved != first and certs.sans_of(certs.load_cert(moved)) == {"127.0.0.1", "10.1.1.1"}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)  # 25 days left: re-issue
    renewed, _ = await store.ensure_serving(ca, ["127.0.0.1", "10.1.1.1"], now=later)
    assert renewed != moved
    not_yet = dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    kept, _ = await store.ensure_serving(ca, ["127.0.0.1", "10.1.1.1"], now=not_yet)
    assert kept == renewed


async def test_concurrent_ca_creation_yields_one_ca(kube: KubeClient) -> None:
    stores = [PKIStore(kube) for _ in range(6)]
    cas = await asyncio.gather(*(s.ensure_ca() for s in stores))
    assert len({ca.cert_der for ca in cas}) == 1
    persisted = await stores[0].load_ca()
    assert persisted is not None and persisted.cert_der == cas[0].cert_der


async def test_run_stops_when_an_extra_task_fails(apiserver: ApiServer, tmp_path: Path) -> None:
    """Any root task ending stops the process; its error surfaces (style.md, root tasks)."""
    from runtime.kube.client import make_client

    async with make_client(apiserver.kubeconfig) as c:
        await ensure_namespace(c)
    cfg = CloudConfig()
    cfg.hub.cert_port = 0
    cfg.metrics_address = "127.0.0.1:0"

    async def broken(ctx: CloudContext) -> None:
        assert ctx.hub_ssl is not None and ctx.ca is not None
        raise RuntimeError("hub could not bind")

    stop = asyncio.Event()
    try:
        await asyncio.wait_for(
            cloud_run.run(cfg, stop, [broken], root=tmp_path, kubeconfig=apiserver.kubeconfig), 30
        )
    except RuntimeError as exc:
        assert "hub could not bind" in str(exc)
    else:
        raise AssertionError("run() returned although a root task failed")


async def test_serving_lifecycle_reissues_a_short_lived_certificate(
    apiserver: ApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    from runtime.cloud import pki_store
    from runtime.kube.resources import SECRETS

    ctx = await build_context(CloudConfig(), tmp_path, apiserver.kubeconfig)
    try:
        await kube.delete(SECRETS, pki_store.SERVING_SECRET, namespace="kubeedge")
        short, key = await ctx.store.ensure_serving(ctx.ca, ctx.advertise(), days=20)
        ctx.install_serving(short, key)
        task = asyncio.create_task(cloud_run._serving_lifecycle(ctx, every=0.05))
        try:
            await eventually_async(lambda: ctx.serving_cert != short, 10, "the short certificate renewed")
        finally:
            task.cancel()
        left = certs.remaining(certs.load_cert(ctx.serving_cert))
        assert left > dt.timedelta(days=360)
        stored = await ctx.store.ensure_serving(ctx.ca, ctx.advertise())
        assert stored[0] == ctx.serving_cert  # persisted for the other replicas
    finally:
        await ctx.client.close()
