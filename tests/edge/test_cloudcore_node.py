"""kedge's edge acting as the node's kubelet through cloudcore (issue 24, findings 3, 4, 5 and 7),
against the recorded-cloudcore peer (tests/fixtures/cloudcore.py): Ready comes back after the
node-lifecycle controller marked the node Unknown, the Node carries the node name and one node IP, a
deleted Node ends the edge's acting for it, and a deleted pod gets no more podpatches.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.agent import podpatch
from runtime.edge.run import EdgeRuntime
from runtime.errors import ConfigError
from runtime.kube.client import KubeClient
from runtime.kube.resources import NODES
from tests.fixtures.cloudcore import CloudcorePeer, cloudcore_peer, pushed
from tests.fixtures.edge import capture, make_edge_root, running
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

EARLIER = "2026-01-01T00:00:00Z"


def ready_of(node: dict[str, Any]) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def requests(peer: CloudcorePeer, operation: str, typ: str) -> list[Any]:
    return [f for f in peer.frames if f.operation == operation and f"/{typ}/" in f.resource]


async def mark_unknown(client: KubeClient, name: str) -> dict[str, Any]:
    """What the node-lifecycle controller does to a node whose edge went silent: Ready=Unknown, tainted
    unreachable. Returns the stored Node."""
    unknown = {"status": "Unknown", "reason": "NodeStatusUnknown", "lastTransitionTime": EARLIER}
    ready = {"type": "Ready", **unknown, "message": "Kubelet stopped posting node status."}
    status = {"status": {"conditions": [ready]}}
    await client.patch(NODES, name, status, type="strategic", subresource="status")
    taints = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    ]
    return await client.patch(NODES, name, {"spec": {"taints": taints}}, type="merge")


def recorded_pod(node: str) -> dict[str, Any]:
    """The recorded pod (capture seq 29), bound to ``node``."""
    pod = copy.deepcopy(next(r for r in capture() if r["seq"] == 29)["msg"]["content"])
    pod["spec"]["nodeName"] = node
    return pod


async def test_node_marked_unknown_by_the_cloud_gets_ready_back(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """While the edge was away the node-lifecycle controller set Ready=Unknown and tainted the node
    unreachable; cloudcore pushes that Node on reconnect. The edge diffs against it (not against what
    it last sent) and patches Ready=True at its next check."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "nl-1", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            assert rt.node is not None
            rt.node.check_every = 0.2
            before = len(requests(peer, "patch", "nodepatch"))
            await peer.push(pushed(8, await mark_unknown(cloud_api, "nl-1")))

            async def ready_back() -> bool:
                node = await peer.ctl.node("nl-1")
                return node is not None and ready_of(node) == "True"

            await eventually_async(ready_back, 10, "Ready patched back")
        patch = json.loads(requests(peer, "patch", "nodepatch")[before].content)["status"]
        ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "EdgeReady"
        assert ready["lastTransitionTime"] > EARLIER


async def test_node_addresses_are_the_node_name_and_one_node_ip(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """edgecore registers Hostname = node name and one node IP (edged.nodeIP); kube-apiserver dials
    the Hostname address for `kubectl logs`. node.ip in edge.toml overrides the default route's."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "addr-1", peer.server)
        cfg.node.ip = "192.0.2.7"
        async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.registered, 15, "registered")
            assert rt.node_ip == "192.0.2.7"  # what the runtime gives the pod manager as hostIP
        inserted = requests(peer, "insert", "node")[0].content
        assert inserted["status"]["addresses"] == [
            {"type": "InternalIP", "address": "192.0.2.7"},
            {"type": "Hostname", "address": "addr-1"},
        ]
    cfg.node.ip = ""
    route = await asyncio.to_thread(
        subprocess.run, ["ip", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True
    )
    if route.returncode == 0 and " src " in route.stdout:  # the default route's source address
        assert EdgeRuntime(cfg, tmp_path).node_ip == route.stdout.split(" src ")[1].split()[0]
    cfg.node.ip = "edge.example"
    with pytest.raises(ConfigError, match=r"node\.ip"):
        EdgeRuntime(cfg, tmp_path)


async def test_deleted_node_ends_acting_for_its_uid(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """`kubectl delete node`: the Node and (by garbage collection) its Lease are gone. The edge must
    not recreate the Lease with an ownerReference to the dead uid, again and again; it says the node
    was removed and stops its Lease and status traffic."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "del-1", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.2)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.lease_renewed, 15, "lease renewed")
            assert rt.node is not None
            # A Lease update recreates a missing Lease (PUT creates leases, as kube-apiserver's do), so
            # the edge learns of the deletion from its next status patch, answered 404
            rt.node.check_every = rt.node.report_every = 0.2
            await peer.ctl.delete_node("del-1")
            lease_inserts = len(requests(peer, "insert", "lease"))
            await eventually_async(lambda: rt.node is not None and rt.node.state()["removed"], 10, "removed")
            sent = len(peer.frames)
            await asyncio.sleep(1.0)  # five lease periods
            assert len(requests(peer, "insert", "lease")) == lease_inserts  # no Lease for the dead uid
            assert [f for f in peer.frames[sent:] if f.operation != "keepalive" and not f.parent_msg_id] == []
            status = await rt.status()
            assert "removed from the cluster" in status["node"]["lastError"]
            assert not status["healthy"]


async def test_node_delete_pushed_by_the_cloud(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """cloudcore pushes the Node's delete to the edge: the edge stops acting for it at once."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "del-2", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.2)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.lease_renewed, 15, "lease renewed")
            node = await peer.ctl.delete_node("del-2")
            await peer.push(pushed(8, node, "delete"))  # the Node frame, as a delete
            await eventually_async(lambda: rt.node is not None and rt.node.state()["removed"], 5, "removed")
            await asyncio.sleep(0.6)  # the thing under test: three lease periods, no new Lease
            assert requests(peer, "insert", "lease") == requests(peer, "insert", "lease")[:1]


async def test_restart_after_node_deletion_does_not_keep_its_pods(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """The Node was deleted while the edge was down (pod GC deleted its pods; cloudcore keeps no
    record of them and sends no delete). On restart the edge registers a new Node (new uid) and
    drops the pods cached for the old one instead of restoring them."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "re-1", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            pod = recorded_pod("re-1")
            first = await peer.ctl.node("re-1")
            assert first is not None
            pod["metadata"]["creationTimestamp"] = first["metadata"]["creationTimestamp"]
            await peer.push(pushed(29, pod))
            assert rt.store is not None
            store = rt.store
            await eventually_async(lambda: requests(peer, "response", "pod"), 5, "pod acked")
            assert len(await store.list("pod")) == 1
        await peer.ctl.delete_node("re-1")  # kubectl delete node while the edge is down
        await asyncio.sleep(1.1)  # creationTimestamps have a one-second resolution
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            second = await peer.ctl.node("re-1")
            assert second is not None and second["metadata"]["uid"] != first["metadata"]["uid"]
            assert rt.node is not None and rt.node.node_uid == second["metadata"]["uid"]
            assert rt.store is not None
            assert await rt.store.list("pod") == []  # not restored, not kept running
            await eventually_async(lambda: rt.node is not None and rt.node.lease_renewed, 10, "lease")
        lease = requests(peer, "insert", "lease")[-1].content
        assert lease["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]


async def test_no_podpatch_for_a_deleted_pod_and_no_qosclass(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """edgecore stops reporting a pod once it is deleted, and its podpatch (a diff against the
    server's status) never carries qosClass, which the API server owns."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "pp-1", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            assert rt.agent is not None
            pod = await peer.ctl.bind_pod(recorded_pod("pp-1"))  # its podpatch is answered
            await peer.push(pushed(29, pod))
            await eventually_async(lambda: requests(peer, "response", "pod"), 5, "pod acked")
            status = {"phase": "Running", "qosClass": "BestEffort", "hostIP": rt.node_ip}
            await rt.agent.on_pod_status(pod, status)
            await eventually_async(lambda: requests(peer, "patch", "podpatch"), 5, "podpatch")
            body = json.loads(requests(peer, "patch", "podpatch")[0].content)
            assert body["status"] == {"phase": "Running", "hostIP": rt.node_ip}
            assert body["metadata"]["uid"] == pod["metadata"]["uid"]
            await peer.push(pushed(83, pod, "delete"))
            await eventually_async(lambda: len(requests(peer, "response", "pod")) >= 2, 5, "delete acked")
            await rt.agent.on_pod_status(pod, {**status, "phase": "Succeeded"})
            await asyncio.sleep(0.5)  # the thing under test: no patch for a deleted pod
            assert len(requests(peer, "patch", "podpatch")) == 1


def test_podpatch_leaves_qosclass_to_the_api_server() -> None:
    pod = recorded_pod("n")
    msg = podpatch(pod, {"qosClass": "Burstable", "phase": "Pending"})
    assert json.loads(msg.content)["status"] == {"phase": "Pending"}
