"""Create-time defaults for kinds other than Pod (workloads, services, namespaces, nodes) give the
objects a real kube-apiserver stores; image tags and quantities as it reads them. Pods: see
test_admission_pods.py."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.apiserver.admission.create import admit_create, default_object, image_tag
from runtime.quantity import canonical_quantity
from tests.fixtures.edge import capture


def test_deployment_defaults_template_but_not_pod_only_fields() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "nginx:1.27", "resources": {"limits": {"cpu": "1"}}}
                    ]
                },
            },
        },
        "status": {"replicas": 9},
    }
    out = admit_create("deployments", dep)
    assert out["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "d"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {
            # the embedded ObjectMeta's creationTimestamp, a struct Go never omits: null
            "metadata": {"labels": {"app": "d"}, "creationTimestamp": None},
            "spec": {
                # SetDefaults_PodSpec only: no enableServiceLinks, no requests copied from limits.
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx:1.27",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {"limits": {"cpu": "1"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        },
    }
    assert out["status"] == {}
    assert admit_create("replicasets", {"spec": {"template": {"spec": {"containers": []}}}})["status"] == {
        "replicas": 0
    }


def test_service_namespace_secret_node_defaults() -> None:
    svc = admit_create(
        "services",
        {
            "metadata": {"name": "s"},
            "spec": {
                "selector": {"app": "x"},
                "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}],
            },
        },
    )
    assert svc["spec"] == {
        "selector": {"app": "x"},
        "ports": [
            {"port": 80, "protocol": "TCP", "targetPort": 80},
            {"port": 53, "protocol": "UDP", "targetPort": "dns"},
        ],
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
    }
    assert svc["status"] == {"loadBalancer": {}}
    np = admit_create("services", {"spec": {"type": "NodePort", "ports": [{"port": 1}]}})
    assert np["spec"]["externalTrafficPolicy"] == "Cluster"
    ns = admit_create("namespaces", {"metadata": {"name": "team"}, "status": {"phase": "Terminating"}})
    assert ns == {
        "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert admit_create("secrets", {"metadata": {"name": "s"}})["type"] == "Opaque"
    node = admit_create(
        "nodes", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2", "memory": "4Gi"}}}
    )
    assert node["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi"}
    assert admit_create("configmaps", {"data": {"a": "b"}}) == {"data": {"a": "b"}}
    # The defaulting alone is idempotent (it also runs on every update).
    once = default_object(
        "deployments", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    )
    assert default_object("deployments", once) == once


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx", "latest"),
        ("nginx:latest", "latest"),
        ("nginx:1.27", "1.27"),
        ("localhost:5000/app", "latest"),
        ("localhost:5000/app:v2", "v2"),
        ("nginx@sha256:abc", ""),
        ("nginx:1@sha256:abc", "1"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("q", "canon"),
    [
        ("100m", "100m"),
        ("0.5", "500m"),
        ("1000", "1k"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("128974848", "128974848"),
        ("129e6", "129e6"),
        ("129M", "129M"),
        ("0.0001", "1m"),
        ("2000m", "2"),
    ],
)
def test_canonical_quantity(q: str, canon: str) -> None:
    assert canonical_quantity(q) == canon


def test_node_create_matches_recorded_real_server() -> None:
    """edgecore's node registration (recorded) and the Node the real apiserver stored from it."""
    frames = {f["seq"]: f["msg"]["content"] for f in capture()}
    sent, stored = frames[6], frames[7]["Object"]
    out = admit_create("nodes", sent)
    # Typed zero values (daemonEndpoints, nodeInfo, condition times) and the TaintNodesByCondition taint.
    assert out["status"] == stored["status"]
    assert (
        out["spec"]
        == stored["spec"]
        == {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}
    )
    bare = admit_create("nodes", {"metadata": {"name": "n"}})
    assert bare["status"]["nodeInfo"]["kubeletVersion"] == "" and bare["status"]["daemonEndpoints"] == {
        "kubeletEndpoint": {"Port": 0}
    }


@pytest.mark.parametrize(
    ("resource", "obj"),
    [
        (
            "pods",
            {
                "spec": {
                    "containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1"}}}],
                    "volumes": [{"name": "v"}],
                },
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        ),
        ("deployments", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
        ("services", {"spec": {"type": "LoadBalancer", "ports": [{"port": 1}]}}),
        ("secrets", {"stringData": {"a": "b"}}),
        ("namespaces", {"metadata": {"name": "n"}}),
        ("nodes", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "1"}}}),
        ("statefulsets", {"spec": {"template": {"spec": {"containers": []}}}}),
        ("daemonsets", {"spec": {"template": {"spec": {"containers": []}}}}),
    ],
)
def test_defaulting_is_idempotent(resource: str, obj: dict[str, Any]) -> None:
    """The server defaults on every decode (create, update, patch result): twice must equal once."""
    once = default_object(resource, obj)
    assert default_object(resource, once) == once
