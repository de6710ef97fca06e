"""ReplicationController (core/v1) and APIService (apiregistration.k8s.io/v1), as a real cluster serves
them: one multi-document `kubectl apply`, `kubectl get` tables, the RC controller keeping replicas,
the APIService's Available condition; foreign conditions survive the controllers' status writes."""

from __future__ import annotations

from typing import Any

from runtime.kube.resources import APISERVICES, PODS, REPLICASETS, REPLICATIONCONTROLLERS
from tests.controlplane.test_controllers import new_namespace, unique
from tests.controlplane.test_workloads import kubectl
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.wait import eventually_async

MANIFEST = """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: {rc}
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: {rc}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.9
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.{group}
spec:
  group: {group}
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service:
    name: metrics-server
    namespace: kube-system
"""


def owned_by(pod: dict[str, Any], kind: str, uid: str) -> bool:
    refs = pod["metadata"].get("ownerReferences") or []
    return any(r.get("kind") == kind and r.get("uid") == uid and r.get("controller") for r in refs)


async def test_apply_rc_and_apiservice_from_one_file(controlplane: ControlPlane) -> None:
    client = controlplane.client
    ns = await new_namespace(client)
    rc_name, group = unique("rc"), f"{unique('m')}.example.com"
    out = await kubectl(
        controlplane, "apply", "-n", ns, "-f", "-", stdin=MANIFEST.format(rc=rc_name, group=group)
    )
    assert f"replicationcontroller/{rc_name} created" in out
    assert f"apiservice.apiregistration.k8s.io/v1beta1.{group} created" in out
    rc = await client.get(REPLICATIONCONTROLLERS, rc_name, namespace=ns)
    assert rc["spec"]["selector"] == {"app": rc_name}  # defaulted from the template's labels
    uid = rc["metadata"]["uid"]

    async def pods_of_rc() -> list[dict[str, Any]]:
        pods = (await client.list(PODS, namespace=ns)).items
        return [
            p
            for p in pods
            if owned_by(p, "ReplicationController", uid) and not p["metadata"].get("deletionTimestamp")
        ]

    async def two() -> bool:
        got = await client.get(REPLICATIONCONTROLLERS, rc_name, namespace=ns)
        return len(await pods_of_rc()) == 2 and (got.get("status") or {}).get("replicas") == 2

    await eventually_async(two, within=20, what="the RC's two pods and status.replicas")
    assert all(p["metadata"]["generateName"] == f"{rc_name}-" for p in await pods_of_rc())
    table = await kubectl(controlplane, "get", "rc", rc_name, "-n", ns)
    assert table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert table.split("\n")[1].split()[:3] == [rc_name, "2", "2"]
    await kubectl(controlplane, "scale", "rc", rc_name, "-n", ns, "--replicas=1")

    async def one() -> bool:
        return len(await pods_of_rc()) == 1

    await eventually_async(one, within=20, what="the RC scaled down to one pod")
    # a ReplicaSet is not confused with it: same machinery, its own kind
    assert not [rs for rs in (await client.list(REPLICASETS, namespace=ns)).items]

    name = f"v1beta1.{group}"

    async def not_available() -> dict[str, Any] | None:
        obj = await client.get(APISERVICES, name)
        conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
        return conds.get("Available")

    if controlplane.embedded:
        cond = await eventually_async(not_available, within=20, what="the APIService's Available condition")
        assert cond["status"] == "False" and cond["reason"] == "ServiceNotProxied"
        assert "does not proxy aggregated APIs" in cond["message"]
        table = await kubectl(controlplane, "get", "apiservice", name)
        assert table.split("\n")[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
        assert table.split("\n")[1].split()[:4] == [
            name,
            "kube-system/metrics-server",
            "False",
            "(ServiceNotProxied)",
        ]
        # a foreign condition is kept next to the one the controller owns
        foreign = {"type": "example.com/Checked", "status": "True"}
        await client.patch(
            APISERVICES, name, {"status": {"conditions": [cond, foreign]}}, subresource="status", type="merge"
        )
        await client.patch(APISERVICES, name, {"metadata": {"labels": {"touched": "yes"}}}, type="merge")
        await eventually_async(not_available, within=5)
        obj = await client.get(APISERVICES, name)
        assert foreign in obj["status"]["conditions"]
    listed = await kubectl(controlplane, "api-resources", "--api-group=apiregistration.k8s.io")
    assert "apiservices" in listed
    await kubectl(controlplane, "delete", "apiservice", name)
