"""The pure parts of the controllers: node-authorizer references, the World model, autonomy windows."""

from __future__ import annotations

from typing import Any

from runtime.cloud.controllers.liveness import parse_window
from runtime.cloud.controllers.refs import pod_refs
from runtime.cloud.controllers.world import World


def full_pod() -> dict[str, Any]:
    env = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
        {"name": "C", "value": "plain"},
    ]
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "1"},
        "spec": {
            "nodeName": "n1",
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "s-pull"}],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
            "containers": [{"name": "c", "env": env, "envFrom": [{"secretRef": {"name": "s-from"}}]}],
            "ephemeralContainers": [
                {
                    "name": "e",
                    "env": [{"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm-eph", "key": "k"}}}],
                }
            ],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-vol"}},
                {"name": "v2", "secret": {"secretName": "s-vol"}},
                {
                    "name": "v3",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "cm-proj"}},
                            {"secret": {"name": "s-proj"}},
                            {"serviceAccountToken": {"path": "token"}},
                            {"downwardAPI": {"items": []}},
                        ]
                    },
                },
                {"name": "v4", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "s-csi"}}},
                {"name": "v5", "emptyDir": {}},
            ],
        },
    }


def test_pod_refs_follow_the_node_authorizer() -> None:
    refs = pod_refs(full_pod())
    assert refs.configmaps == {"cm-env", "cm-init", "cm-eph", "cm-vol", "cm-proj"}
    assert refs.secrets == {"s-env", "s-pull", "s-from", "s-vol", "s-proj", "s-csi"}
    assert refs.service_account == "robot"
    assert pod_refs({"spec": {}}).service_account == "default"


def test_world_desired_references_and_moves() -> None:
    w = World()
    assert w.apply(
        "Node",
        "ADDED",
        {
            "metadata": {
                "name": "n1",
                "uid": "nu",
                "resourceVersion": "5",
                "labels": {"node-role.kubernetes.io/edge": ""},
            }
        },
    ) == {"n1"}
    assert w.apply("Node", "ADDED", {"metadata": {"name": "cloud-node", "uid": "cu", "labels": {}}}) == set()
    assert (
        w.apply(
            "ConfigMap",
            "ADDED",
            {"metadata": {"name": "cm-vol", "namespace": "ns", "uid": "c1", "resourceVersion": "2"}},
        )
        == set()
    )
    assert w.apply("Pod", "ADDED", full_pod()) == {"n1"}
    assert w.references("n1", "configmap", "ns", "cm-vol") and w.references("n1", "secret", "ns", "s-csi")
    assert not w.references("n1", "configmap", "other", "cm-vol")
    assert not w.references("n2", "configmap", "ns", "cm-vol")
    d = w.desired("n1")
    assert {c.resource for c in d.values()} == {"null/node/n1", "ns/pod/p", "ns/configmap/cm-vol"}
    assert d["u1"].rv == "1" and d["c1"].rv == "2"
    # a ConfigMap change concerns the nodes whose pods use it
    assert w.apply(
        "ConfigMap",
        "MODIFIED",
        {"metadata": {"name": "cm-vol", "namespace": "ns", "uid": "c1", "resourceVersion": "3"}},
    ) == {"n1"}
    assert w.pod_for_token("n1", "ns", "robot", "p", "u1") is not None
    assert w.pod_for_token("n1", "ns", "default", "p", "u1") is None
    assert w.pod_for_token("n1", "ns", "robot", "p", "other-uid") is None
    # the pod goes: its references go with it
    assert w.apply("Pod", "DELETED", full_pod()) == {"n1"}
    assert not w.references("n1", "configmap", "ns", "cm-vol") and not w.ref_nodes
    assert {c.resource for c in w.desired("n1").values()} == {"null/node/n1"}


def test_autonomy_window_annotation() -> None:
    assert parse_window("24h", 1) == 86400
    assert parse_window("1h30m", 1) == 5400
    assert parse_window("90", 1) == 90
    assert parse_window("soon", 7) == 7 and parse_window(None, 7) == 7
