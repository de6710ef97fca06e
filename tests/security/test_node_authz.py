"""A valid node certificate used against another node's objects through the edge channel's meta
requests: each refused with 403 in KubeEdge's wrapped form, the cloud still answering the owner after.

Already covered elsewhere (docs/reliability.md lists them): configmap/secret/token of another node's pod,
patching another node's pod status or Node status, its Lease, deleting its pod
(tests/cloud/test_controllers.py::test_references_authorized_and_refused); writing another node's
device (tests/cloud/test_devices_status.py). Here: reading pods, and the secret a foreign pod mounts."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

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


async def test_a_request_naming_another_nodes_prefix_is_refused_403_and_logged_once(
    cloudenv: CloudEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """`node/<other>/…` in an edge's resource: the hub answers 403 (it used to reach no handler and go
    unanswered or answered 400), counts it, logs it once; the edge logs the refusal once too."""
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    owner, intruder = await env.edge("own-c", cloud), await env.edge("intr-d", cloud)
    await env.register(owner)
    await env.register(intruder)
    await client.create(PODS, pod("target", "own-c"))
    caplog.set_level(logging.WARNING)
    for op, res, body in (
        (OP_QUERY, "node/own-c/default/pod/target", None),
        (OP_PATCH, "node/own-c/null/nodepatch/own-c", json.dumps({"status": {"conditions": []}})),
        (OP_DELETE, "node/own-c/default/pod/target", None),
    ):
        r = await intruder.request(op, res, body)
        assert refused(r), (op, res, r.content)
        msg = r.content["Err"]["ErrStatus"]["message"]
        assert '"intr-d"' in msg and '"own-c"' in msg, msg
    assert cloud.hub.metrics.refused_messages._value.get() == 3
    said = [r.getMessage() for r in caplog.records]
    assert sum("edge intr-d: refused (403)" in m for m in said) == 1, said  # once, then counted
    assert sum("cloud refused" in m and "(403)" in m for m in said) == 1, said
    assert intruder.hub.refused == 3
    # untouched, and an edge naming itself in the prefix is served as without it
    assert (await client.get(PODS, "target", namespace="default"))["spec"]["nodeName"] == "own-c"
    ok = await owner.request(OP_PATCH, "node/own-c/null/nodepatch/own-c", json.dumps({"status": {}}))
    assert ok.content["Err"] is None and ok.content["Object"]["metadata"]["name"] == "own-c", ok.content
