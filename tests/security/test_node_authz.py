"""A valid node certificate used against another node's objects through the edge channel's meta
requests: each refused with 403 in KubeEdge's wrapped form, the cloud still answering the owner after.

Already covered elsewhere (docs/reliability.md lists them): configmap/secret/token of another node's pod,
patching another node's pod status or Node status, its Lease, deleting its pod
(tests/cloud/test_controllers.py::test_references_authorized_and_refused); writing another node's
device (tests/cloud/test_devices_status.py). Here: reading pods, and the secret a foreign pod mounts."""

from __future__ import annotations

import json
from typing import Any

from runtime.kube.resources import PODS, SECRETS
from runtime.protocol import OP_DELETE, OP_PATCH, OP_QUERY
from tests.cloud.test_controllers import pod
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.wait import eventually_async


def refused(r: Any) -> bool:
    return bool(r.content["Object"] is None and r.content["Err"]["ErrStatus"]["code"] == 403)


async def test_another_nodes_pods_and_secrets_are_refused_and_the_owner_still_served(
    cloudenv: CloudEnv,
) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    owner, intruder = await env.edge("own-a", cloud), await env.edge("intr-b", cloud)
    await env.register(owner)
    await env.register(intruder)
    await client.create(SECRETS, {"metadata": {"name": "tls", "namespace": "default"}, "data": {"k": "dg=="}})
    p = await client.create(PODS, pod("victim", "own-a", secret="tls"))
    await eventually_async(lambda: owner.got("insert", "pod"), what="pod at own-a")
    uid = p["metadata"]["uid"]
    for op, res, body in (
        (OP_QUERY, "default/pod/victim", None),  # read another node's pod
        (OP_QUERY, "default/secret/tls", None),  # the secret its pod mounts
        (OP_PATCH, "default/podpatch/victim", json.dumps({"metadata": {"uid": uid}, "status": {}})),
        (OP_DELETE, "default/pod/victim", {"preconditions": {"uid": uid}}),
        (OP_PATCH, "null/nodepatch/own-a", json.dumps({"status": {"conditions": []}})),
    ):
        r = await intruder.request(op, res, body)
        assert refused(r), (op, res, r.content)
        assert "intr-b" in r.content["Err"]["ErrStatus"]["message"], r.content
    # the pod and the node are untouched; the owner is still served, the intruder's own requests too
    assert (await client.get(PODS, "victim", namespace="default"))["metadata"]["uid"] == uid
    ok = await owner.request(OP_QUERY, "default/secret/tls")
    assert ok.content["kind"] == "Secret" and ok.content["data"] == {"k": "dg=="}
    own_status = await intruder.request(OP_PATCH, "null/nodepatch/intr-b", json.dumps({"status": {}}))
    assert own_status.content["Err"] is None, own_status.content
