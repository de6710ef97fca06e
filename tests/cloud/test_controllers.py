"""Edge and node controllers against the embedded control plane, a real CloudHub and real EdgeHubs."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CONFIGMAPS, LEASES, NODES, OBJECTSYNCS, PODS, SECRETS, SERVICEACCOUNTS
from runtime.protocol import OP_DELETE, OP_INSERT, OP_PATCH, OP_QUERY, OP_UPDATE
from tests.fixtures.cloudctl import CloudEnv, Edge, Replica
from tests.fixtures.wait import eventually_async


def pod(
    name: str, node: str, *, cm: str | None = None, secret: str | None = None, sa: str | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "registry.local/busybox:1.36", "command": ["sleep", "3600"]}
    spec: dict[str, Any] = {"nodeName": node, "containers": [c]}
    if cm:
        c["env"] = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": cm, "key": "k"}}}]
    if secret:
        spec["volumes"] = [{"name": "s", "projected": {"sources": [{"secret": {"name": secret}}]}}]
    if sa:
        spec["serviceAccountName"] = sa
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "t"}}, "spec": spec}


async def test_pod_fan_out_reaches_only_its_edge_with_references(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    e1, e2 = await env.edge("fan-1", cloud), await env.edge("fan-2", cloud)
    n1 = await env.register(e1)
    await env.register(e2)
    await eventually_async(
        lambda: e1.got(OP_INSERT, "node") and e2.got(OP_INSERT, "node"), what="nodes sent down"
    )
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"k": "v"}})
    await client.create(
        SECRETS, {"metadata": {"name": "sec", "namespace": "default"}, "data": {"p": "cGFzcw=="}}
    )
    created = await client.create(PODS, pod("p1", "fan-1", cm="cfg", secret="sec"))
    await eventually_async(lambda: e1.got(OP_INSERT, "pod"), what="pod insert at fan-1")
    (ins,) = e1.got(OP_INSERT, "pod")
    assert ins.resource == "default/pod/p1"
    assert ins.resourceversion == created["metadata"]["resourceVersion"]
    assert ins.content["metadata"]["uid"] == created["metadata"]["uid"]
    assert ins.content["spec"]["nodeName"] == "fan-1"
    kinds = [m.resource.split("/")[1] for m in e1.received]
    # referenced objects travel with the pod, before it
    assert {"configmap", "secret"} <= set(kinds)
    assert kinds.index("configmap") < kinds.index("pod") and kinds.index("secret") < kinds.index("pod")
    # kube-root-ca.crt comes too: every pod's projected service-account volume references it
    assert any(m.resource == "default/configmap/kube-root-ca.crt" for m in e1.received)
    assert not e2.got(typ="pod") and not e2.got(typ="configmap") and not e2.got(typ="secret")
    # acked → persisted per <node>.<uid>
    uid = created["metadata"]["uid"]
    await eventually_async(
        lambda: cloud.ctl.edge and cloud.ctl.edge.acks.get("fan-1", uid), what="ack recorded"
    )

    async def persisted() -> bool:
        try:
            obj = await client.get(OBJECTSYNCS, f"fan-1.{uid}", namespace="kubeedge")
        except Exception:
            return False
        acked = obj.get("status", {}).get("objectResourceVersion")
        return bool(acked == created["metadata"]["resourceVersion"])

    await eventually_async(persisted, what="ObjectSync written")
    # update → update with the new RV; delete → delete
    upd = await client.patch(PODS, "p1", {"metadata": {"labels": {"v": "2"}}}, namespace="default")
    await eventually_async(
        lambda: any(
            m.resourceversion == upd["metadata"]["resourceVersion"] for m in e1.got(OP_UPDATE, "pod")
        ),
        what="pod update",
    )
    await client.delete(PODS, "p1", namespace="default", grace_period=0)
    await eventually_async(lambda: e1.got(OP_DELETE, "pod"), what="pod delete")
    assert not e2.got(typ="pod")
    assert n1["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
    assert cloud.hub.pending_acks() == 0 or await eventually_async(
        lambda: cloud.hub.pending_acks() == 0, what="acks"
    )


async def not_acking(env: CloudEnv, node: str) -> tuple[Replica, Edge]:
    """A cloud and a registered edge that got its Node and from now on acks nothing."""
    cloud = await env.cloud()
    e = await env.edge(node, cloud)
    await env.register(e)
    await eventually_async(lambda: e.got(OP_INSERT, "node"), what="node sent")
    e.auto_ack = False
    return cloud, e


async def test_unacked_message_is_resent_until_acked(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    cloud, e = await not_acking(env, "slow-1")
    created = await client.create(PODS, pod("p", "slow-1"))
    await eventually_async(lambda: len(e.got(OP_INSERT, "pod")) >= 2, what="a resend of the unacked insert")
    first, second = e.got(OP_INSERT, "pod")[:2]
    assert first.msg_id == second.msg_id and first.resourceversion == created["metadata"]["resourceVersion"]
    assert cloud.hub.pending_acks("slow-1") >= 1
    await e.hub.ack(second)
    await eventually_async(
        lambda: (
            cloud.hub.pending_acks("slow-1") == 0
            or all(
                m.operation != OP_INSERT or "pod" not in m.resource
                for _, m in cloud.hub.downlink("slow-1").pending()
            )
        ),
        what="pod acked",
    )
    n = len(e.got(OP_INSERT, "pod"))
    e.auto_ack = True
    await asyncio.sleep(1.2)  # > 2 resend periods: nothing more for the acked pod
    assert len(e.got(OP_INSERT, "pod")) == n


async def test_pod_recreated_while_edge_away_arrives_as_delete_then_insert(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    e = await env.edge("away-1", cloud)
    await env.register(e)
    old = await client.create(PODS, pod("same", "away-1"))
    await eventually_async(
        lambda: cloud.ctl.edge and cloud.ctl.edge.acks.get("away-1", old["metadata"]["uid"]),
        what="first incarnation acked",
    )
    await e.stop()
    await eventually_async(lambda: not cloud.hub.connected("away-1"), what="edge gone")
    await client.delete(PODS, "same", namespace="default", grace_period=0)
    await eventually_async(
        lambda: "same" not in {p["metadata"]["name"] for p in cloud.ctl.world.pods.values()},
        what="old pod gone",
    )
    new = await client.create(PODS, pod("same", "away-1"))
    e2 = await env.edge("away-1", cloud)
    await eventually_async(lambda: e2.got(OP_INSERT, "pod"), what="new incarnation")
    pods = [m for m in e2.received if "/pod/" in m.resource]
    assert [(m.operation, m.content["metadata"]["uid"]) for m in pods] == [
        (OP_DELETE, old["metadata"]["uid"]),
        (OP_INSERT, new["metadata"]["uid"]),
    ]


async def test_references_authorized_and_refused(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    a, b = await env.edge("ref-a", cloud), await env.edge("ref-b", cloud)
    await env.register(a)
    await env.register(b)
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "robot", "namespace": "default"}})
    for name in ("used", "other"):
        cm = {"metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}
        await client.create(CONFIGMAPS, cm)
    p = await client.create(PODS, pod("pa", "ref-a", cm="used", secret="not-there", sa="robot"))
    await client.create(PODS, pod("pb", "ref-b"))
    await eventually_async(lambda: a.got(OP_INSERT, "pod"), what="pod at ref-a")
    # referenced ConfigMap: the bare object
    ok = await a.request(OP_QUERY, "default/configmap/used")
    assert ok.content["kind"] == "ConfigMap" and ok.content["data"] == {"k": "v"} and ok.resourceversion
    # not referenced by any pod on the node: 403 in the wrapped form, never silence
    for node, res in (
        (a, "default/configmap/other"),
        (b, "default/configmap/used"),
        (a, "default/secret/unreferenced"),
    ):
        r = await node.request(OP_QUERY, res)
        assert r.content["Object"] is None and r.content["Err"]["ErrStatus"]["code"] == 403, (res, r.content)
    # referenced but missing: 404
    r = await a.request(OP_QUERY, "default/secret/not-there")
    assert r.content["Err"]["ErrStatus"]["code"] == 404
    # service-account token: only for the pod's SA, bound to that pod on this node
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "pa", "uid": p["metadata"]["uid"]}
    tr = {
        "metadata": {"creationTimestamp": None},
        "spec": {"audiences": None, "expirationSeconds": 3607, "boundObjectRef": ref},
        "status": {"token": "", "expirationTimestamp": None},
    }
    tok = await a.request(OP_QUERY, "default/serviceaccounttoken/robot", tr)
    assert tok.content["kind"] == "TokenRequest" and tok.content["status"]["token"]
    assert tok.content["spec"]["boundObjectRef"]["uid"] == p["metadata"]["uid"]
    assert tok.content["spec"]["expirationSeconds"] == 3607
    for node, sa in ((a, "default"), (b, "robot")):  # wrong SA for the pod; pod not on that node
        r = await node.request(OP_QUERY, f"default/serviceaccounttoken/{sa}", tr)
        assert r.content["Err"]["ErrStatus"]["code"] == 403, r.content
    # another node's pod, lease or Node
    patch = json.dumps({"metadata": {"uid": p["metadata"]["uid"]}, "status": {"phase": "Running"}})
    for op, res, body in (
        (OP_PATCH, "default/podpatch/pa", patch),
        (OP_UPDATE, "kube-node-lease/lease/ref-a", {}),
        (OP_PATCH, "null/nodepatch/ref-a", "{}"),
        (OP_DELETE, "default/pod/pa", {}),
    ):
        r = await b.request(op, res, body)
        assert r.content["Err"]["ErrStatus"]["code"] == 403, (res, r.content)
    # the owner may patch its pod's status (UID in the patch), and a stale UID is refused as a real
    # kube-apiserver refuses it: 422 Invalid, metadata.uid is immutable
    r = await a.request(OP_PATCH, "default/podpatch/pa", patch)
    assert r.content["Err"] is None and r.content["Object"]["status"]["phase"] == "Running"
    stale = json.dumps(
        {"metadata": {"uid": "00000000-0000-0000-0000-000000000000"}, "status": {"phase": "Failed"}}
    )
    r = await a.request(OP_PATCH, "default/podpatch/pa", stale)
    assert r.content["Err"]["ErrStatus"]["code"] == 422, r.content
    assert "metadata.uid" in r.content["Err"]["ErrStatus"]["message"], r.content
    # and delete it with the UID precondition → "OK"
    r = await a.request(
        OP_DELETE, "default/pod/pa", {"gracePeriodSeconds": 0, "preconditions": {"uid": p["metadata"]["uid"]}}
    )
    assert r.content == "OK"


def kubectl(env: CloudEnv, *args: str) -> Any:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(env.cp.kubeconfig), *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def lease_of(env: CloudEnv, node: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def get() -> dict[str, Any] | None:
        try:
            return await env.client.get(LEASES, node, namespace="kube-node-lease")
        except KubeNotFound:
            return None

    return get


def renewed_after(env: CloudEnv, node: str, renew_time: str) -> Callable[[], Awaitable[bool]]:
    async def later() -> bool:
        lease = await lease_of(env, node)()
        return bool(lease and lease["spec"]["renewTime"] > renew_time)

    return later


async def test_registration_status_patch_and_lease_visible_through_kubectl(cloudenv: CloudEnv) -> None:
    env = cloudenv
    cloud = await env.cloud()
    e = await env.edge("kc-1", cloud)
    await env.register(e)
    node = await asyncio.to_thread(kubectl, env, "get", "node", "kc-1")
    assert node["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
    assert node["status"]["capacity"]["pods"] == "110"
    cond = {
        "type": "Ready",
        "status": "True",
        "reason": "EdgeReady",
        "message": "edge is posting ready status",
        "lastHeartbeatTime": "2026-11-28T09:32:39Z",
        "lastTransitionTime": "2026-11-28T09:32:39Z",
    }
    r = await e.request(OP_PATCH, "null/nodepatch/kc-1", json.dumps({"status": {"conditions": [cond]}}))
    assert r.content["Err"] is None and r.resourceversion
    node = await asyncio.to_thread(kubectl, env, "get", "node", "kc-1")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "EdgeReady"
    # kedge edge ↔ kedge cloud: the cloud renews the node's Lease from the session
    # (the first renewal is asynchronous to registration: wait for the Lease before reading it with kubectl)
    await eventually_async(lease_of(env, "kc-1"), what="the node's Lease written")
    lease1 = await asyncio.to_thread(kubectl, env, "get", "lease", "-n", "kube-node-lease", "kc-1")
    await eventually_async(renewed_after(env, "kc-1", lease1["spec"]["renewTime"]), what="the Lease renewed")
    lease2 = await asyncio.to_thread(kubectl, env, "get", "lease", "-n", "kube-node-lease", "kc-1")
    assert lease2["spec"]["renewTime"] > lease1["spec"]["renewTime"]
    assert lease2["spec"]["holderIdentity"] == "kc-1"
    assert node["metadata"]["annotations"]["node.kedge.io/session-owner"] == cloud.ctl.identity


async def test_a_1mib_secret_crosses_the_channel_with_its_pod(cloudenv: CloudEnv) -> None:
    import base64
    import os

    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    e = await env.edge("big-1", cloud)
    await env.register(e)
    blob = os.urandom(1 << 20)  # 1 MiB: the largest Secret Kubernetes stores
    await client.create(
        SECRETS,
        {
            "metadata": {"name": "big", "namespace": "default"},
            "data": {"blob": base64.b64encode(blob).decode()},
        },
    )
    await client.create(PODS, pod("bigpod", "big-1", secret="big"))
    await eventually_async(lambda: e.got(OP_INSERT, "secret"), within=20, what="1 MiB secret at the edge")
    (msg,) = [m for m in e.got(OP_INSERT, "secret") if m.resource == "default/secret/big"]
    assert base64.b64decode(msg.content["data"]["blob"]) == blob
    await eventually_async(lambda: cloud.hub.pending_acks("big-1") == 0, what="acked")


async def test_a_deleted_nodes_unacked_messages_and_delivery_state_go_with_it(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    cloud, e = await not_acking(env, "gone-1")
    await client.create(PODS, pod("p", "gone-1"))
    await eventually_async(lambda: e.got(OP_INSERT, "pod"), what="pod sent, not acked")
    await e.stop()
    await eventually_async(lambda: not cloud.hub.connected("gone-1"), what="edge offline")
    assert cloud.hub.pending_acks("gone-1") >= 1 and "gone-1" in cloud.hub.tracked()
    await client.delete(NODES, "gone-1")
    await eventually_async(
        lambda: "gone-1" not in cloud.hub.tracked(), what="delivery state dropped with the Node"
    )
    assert cloud.hub.pending_acks("gone-1") == 0
