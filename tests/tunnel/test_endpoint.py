"""The cloud's override of its edge nodes' kubelet endpoint (runtime/cloud/tunnel), against the real
CloudHub + CloudControllers over the embedded control plane, with real EdgeHub sessions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from runtime.cloud.tunnel import ports
from runtime.cloud.tunnel.endpoint import KubeletEndpoint, KubeletEndpoints
from runtime.cloud.tunnel.replica import TunnelReplica
from runtime.cloud.tunnel.replica import endpoint_of as endpoint_of_config
from runtime.config import KubeletEndpointSection
from runtime.edge.nodestatus import NodeStatus
from runtime.kube.client import KubeClient
from runtime.kube.resources import CONFIGMAPS, NODES
from runtime.protocol import OP_PATCH
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import CloudEnv, prepare_cluster, spawn_cloud
from tests.fixtures.procs import Spawner
from tests.fixtures.wait import eventually_async


def endpoint_of(node: dict[str, Any]) -> tuple[str, int]:
    st = node["status"]
    internal = next(a["address"] for a in st["addresses"] if a["type"] == "InternalIP")
    return internal, st["daemonEndpoints"]["kubeletEndpoint"]["Port"]


def fixed(address: str, port: int) -> KubeletEndpoints:
    return KubeletEndpoints(lambda: KubeletEndpoint(address, port))


async def test_direct_registration_and_status_patches_carry_the_stream_endpoint(cloudenv: CloudEnv) -> None:
    env = cloudenv
    cloud = await env.cloud(endpoints=fixed("127.0.0.1", 4321))
    e = await env.edge("tun-1", cloud)
    registered = await env.register(e)
    assert endpoint_of(registered) == ("127.0.0.1", 4321)
    hostnames = [a for a in registered["status"]["addresses"] if a["type"] == "Hostname"]
    assert hostnames, "the edge's other addresses are kept"
    # the edge reports its own again: the cloud writes its endpoint over it
    patch = {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10350}},
                        "addresses": [{"type": "InternalIP", "address": "192.0.2.7"}]}}  # fmt: skip
    r = await e.request(OP_PATCH, "null/nodepatch/tun-1", json.dumps(patch))
    assert r.content["Err"] is None, r.content
    node = await env.client.get(NODES, "tun-1")
    assert endpoint_of(node) == ("127.0.0.1", 4321)
    assert [a["type"] for a in node["status"]["addresses"]].count("InternalIP") == 1


async def test_a_node_connecting_to_a_replica_gets_that_replicas_tunnel_port(cloudenv: CloudEnv) -> None:
    env = cloudenv
    plain = await env.cloud("a")  # mode none: what the edge reports stands
    e = await env.edge("tun-2", plain)
    await env.register(e)
    before = await env.client.get(NODES, "tun-2")
    edge_ip, edge_port = endpoint_of(before)
    assert edge_port == 10350
    await e.stop()
    tunnel = await env.cloud("b", endpoints=fixed("", 10352))  # dnat: the edge's address, b's port
    await env.edge("tun-2", tunnel)

    async def moved() -> bool:
        return endpoint_of(await env.client.get(NODES, "tun-2")) == (edge_ip, 10352)

    await eventually_async(moved, what="the node's kubelet port is replica b's tunnel port")


async def test_the_edge_does_not_resend_what_the_cloud_overrides(cloudenv: CloudEnv, tmp_path: Path) -> None:
    env = cloudenv
    cloud = await env.cloud(endpoints=fixed("127.0.0.1", 4321))
    e = await env.edge("tun-3", cloud)
    status = NodeStatus(e.hub, "tun-3", state_dir=tmp_path, ip="192.0.2.9")
    await status.register()
    assert await status.report() is True  # the first report: everything, overridden by the cloud
    node = await env.client.get(NODES, "tun-3")
    assert endpoint_of(node) == ("127.0.0.1", 4321)
    patches = cloud.ctl.requests.answered
    # nothing changed on the edge: the override is not a difference to undo, no patch goes out
    assert await status.report() is False
    assert await status.report() is False
    assert cloud.ctl.requests.answered == patches
    assert endpoint_of(await env.client.get(NODES, "tun-3")) == ("127.0.0.1", 4321)
    # the periodic full report sends the edge's own again (restoring what another writer changed); the
    # cloud writes its endpoint over it once more
    assert await status.report(force=True) is True
    assert endpoint_of(await env.client.get(NODES, "tun-3")) == ("127.0.0.1", 4321)


async def test_tunnel_ports_are_claimed_idempotently_and_released(cloudenv: CloudEnv) -> None:
    client = cloudenv.client
    await prepare_cluster(client)
    ns = "kubeedge"
    assert await ports.claim(client, ns, "10.0.0.1", 10003) == 10351
    assert await ports.claim(client, ns, "10.0.0.1", 10003) == 10351  # the same replica: the same port
    assert await ports.claim(client, ns, "10.0.0.2", 10003) == 10352
    # two replicas starting at once never share a port (conditional writes, retried)
    got = await asyncio.gather(*(ports.claim(client, ns, f"10.0.1.{i}", 10004) for i in range(4)))
    assert sorted(got) == [10353, 10354, 10355, 10356]
    cm = await client.get(CONFIGMAPS, ports.CONFIGMAP, namespace=ns)
    record = json.loads(cm["metadata"]["annotations"]["tunnelportrecord.kubeedge.io"])
    assert record["ipTunnelPort"]["10.0.0.2"] == 10352 and record["port"]["10352"] is True  # KubeEdge's shape
    assert json.loads(cm["metadata"]["annotations"][ports.ANN_STREAM_PORTS])["10.0.1.0"] == 10004
    assert await ports.release(client, ns, "10.0.0.1") is True
    assert await ports.release(client, ns, "10.0.0.1") is False
    assert await ports.claim(client, ns, "10.0.0.9", 10003) == 10351  # the lowest free port again
    rec = await ports.read(client, ns)
    assert "10.0.0.1" not in rec.tunnel and rec.tunnel["10.0.0.9"] == 10351


def test_the_mode_decides_what_is_written() -> None:
    bound: dict[str, str] = {}
    cfg = KubeletEndpointSection(mode="direct")
    eps = endpoint_of_config(cfg, [], lambda: bound.get("stream"), None)
    assert eps.current() is None  # the stream endpoint has not bound yet: nothing is overridden
    bound["stream"] = "0.0.0.0:40123"
    assert eps.current() == KubeletEndpoint("127.0.0.1", 40123)
    eps = endpoint_of_config(KubeletEndpointSection(mode="direct"), ["203.0.113.5"], lambda: None, None)
    assert eps.current() is None
    cfg = KubeletEndpointSection(mode="direct", address="198.51.100.1", port=9443)
    assert endpoint_of_config(cfg, ["203.0.113.5"], lambda: None, None).current() == KubeletEndpoint(
        "198.51.100.1", 9443
    )
    assert endpoint_of_config(KubeletEndpointSection(), [], lambda: "0.0.0.0:1", None).current() is None


async def test_a_dnat_replica_claims_its_port_once_the_stream_endpoint_is_bound(cloudenv: CloudEnv) -> None:
    client = cloudenv.client
    await prepare_cluster(client)
    bound: dict[str, str] = {}
    cfg = KubeletEndpointSection(mode="dnat", tunnel_address="192.0.2.50", tunnel_port_start=10400)
    replica = TunnelReplica(client, "kubeedge", cfg, [], lambda: bound.get("stream"))
    eps = endpoint_of_config(cfg, [], lambda: bound.get("stream"), replica)
    task = asyncio.create_task(replica.run())
    try:
        assert eps.current() is None
        bound["stream"] = "0.0.0.0:40555"
        await eventually_async(lambda: eps.current() is not None, what="the tunnel port claimed")
        assert eps.current() == KubeletEndpoint("", 10400)
        rec = await ports.read(client, "kubeedge")
        assert rec.tunnel == {"192.0.2.50": 10400} and rec.stream == {"192.0.2.50": 40555}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_claims_of_replicas_no_longer_live_are_dropped(cloudenv: CloudEnv) -> None:
    client = cloudenv.client
    await prepare_cluster(client)
    ns = "kubeedge"
    assert await ports.claim(client, ns, "10.1.0.1", 40001, replica="a") == 10351
    assert await ports.claim(client, ns, "10.1.0.2", 40001, replica="b") == 10352
    # a died and came back under another address; until the live set is known nothing is dropped
    assert await ports.claim(client, ns, "10.1.0.3", 40001, replica="a2") == 10353
    assert set((await ports.read(client, ns)).tunnel) == {"10.1.0.1", "10.1.0.2", "10.1.0.3"}
    # b's Lease is current, a's expired: a's claim goes, its port is free again
    assert await ports.claim(client, ns, "10.1.0.3", 40001, replica="a2", live={"a2", "b"}) == 10353
    rec = await ports.read(client, ns)
    assert rec.tunnel == {"10.1.0.2": 10352, "10.1.0.3": 10353}
    assert rec.replicas == {"10.1.0.2": "b", "10.1.0.3": "a2"}
    assert await ports.claim(client, ns, "10.1.0.4", 40001, replica="c", live={"a2", "b", "c"}) == 10351
    # a claim kedge did not make (a KubeEdge cloudcore's: no replica recorded) is never dropped
    cm = await client.get(CONFIGMAPS, ports.CONFIGMAP, namespace=ns)
    rec = ports.Record.of(cm)
    rec.tunnel["192.0.2.1"] = 10360
    cm["metadata"]["annotations"].update(rec.annotations())
    await client.replace(CONFIGMAPS, cm, namespace=ns)
    await ports.claim(client, ns, "10.1.0.4", 40001, replica="c", live={"c"})
    assert (await ports.read(client, ns)).tunnel == {"10.1.0.4": 10351, "192.0.2.1": 10360}


async def test_kedge_cloud_run_in_dnat_mode_claims_a_port_for_its_stream_endpoint(
    apiserver: ApiServer, kube: KubeClient, spawn: Spawner, tmp_path: Path
) -> None:
    await prepare_cluster(kube)
    sets = ["hub.cert_port=0", "hub.websocket_port=0", "hub.bind=127.0.0.1", "metrics_address=127.0.0.1:0",
            "stream.port=0", "stream.bind=127.0.0.1", "kubelet_endpoint.mode=dnat",
            "kubelet_endpoint.tunnel_address=192.0.2.77",
            "kubelet_endpoint.tunnel_port_start=10420"]  # fmt: skip
    _proc, _log, addr = spawn_cloud(spawn, apiserver.kubeconfig, tmp_path / "root", sets, ready="stream")
    stream_port = int(addr["stream"].rsplit(":", 1)[1])

    async def claimed() -> ports.Record | None:
        rec = await ports.read(kube, "kubeedge")
        return rec if "192.0.2.77" in rec.tunnel else None

    rec = await eventually_async(claimed, 30, what="the replica's tunnel port claimed")
    assert rec.tunnel["192.0.2.77"] == 10420 and rec.stream["192.0.2.77"] == stream_port
    assert rec.replicas["192.0.2.77"]  # the replica's identity, for pruning once its Lease expires


async def test_the_periodic_report_restores_an_endpoint_someone_else_changed(
    cloudenv: CloudEnv, tmp_path: Path
) -> None:
    env = cloudenv
    cloud = await env.cloud()  # mode none: the edge's report is what the Node should say
    e = await env.edge("tun-4", cloud)
    status = NodeStatus(e.hub, "tun-4", state_dir=tmp_path, ip="192.0.2.10")
    await status.register()
    assert await status.report(force=True) is True  # what the edge sent is now known to it
    patch = {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 9999}}}}
    await env.client.patch(NODES, "tun-4", patch, type="strategic", subresource="status")
    status.cloud_node(await env.client.get(NODES, "tun-4"))  # the Node the cloud pushes down
    await status.report(force=True)
    assert endpoint_of(await env.client.get(NODES, "tun-4")) == ("192.0.2.10", 10350)
