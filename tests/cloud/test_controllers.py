"""Edge and node controllers against the embedded control plane, a real CloudHub and real EdgeHubs."""

from __future__ import annotations

from typing import Any

from runtime.kube.resources import CONFIGMAPS, OBJECTSYNCS, PODS, SECRETS
from runtime.protocol import OP_DELETE, OP_INSERT, OP_UPDATE
from tests.fixtures.cloudctl import CloudEnv, until


def pod(name: str, node: str, *, cm: str | None = None, secret: str | None = None,
        sa: str | None = None) -> dict[str, Any]:
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
    await until(lambda: e1.got(OP_INSERT, "node") and e2.got(OP_INSERT, "node"), what="nodes sent down")
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"k": "v"}})
    await client.create(SECRETS, {"metadata": {"name": "sec", "namespace": "default"},
                                  "data": {"p": "cGFzcw=="}})
    created = await client.create(PODS, pod("p1", "fan-1", cm="cfg", secret="sec"))
    await until(lambda: e1.got(OP_INSERT, "pod"), what="pod insert at fan-1")
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
    await until(lambda: cloud.ctl.edge and cloud.ctl.edge.acks.get("fan-1", uid), what="ack recorded")

    async def persisted() -> bool:
        try:
            obj = await client.get(OBJECTSYNCS, f"fan-1.{uid}", namespace="kubeedge")
        except Exception:
            return False
        acked = obj.get("status", {}).get("objectResourceVersion")
        return bool(acked == created["metadata"]["resourceVersion"])

    await until(persisted, what="ObjectSync written")
    # update → update with the new RV; delete → delete
    upd = await client.patch(PODS, "p1", {"metadata": {"labels": {"v": "2"}}}, namespace="default")
    await until(lambda: any(m.resourceversion == upd["metadata"]["resourceVersion"]
                            for m in e1.got(OP_UPDATE, "pod")), what="pod update")
    await client.delete(PODS, "p1", namespace="default", grace_period=0)
    await until(lambda: e1.got(OP_DELETE, "pod"), what="pod delete")
    assert not e2.got(typ="pod")
    assert n1["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
    assert cloud.hub.pending_acks() == 0 or await until(lambda: cloud.hub.pending_acks() == 0, what="acks")
