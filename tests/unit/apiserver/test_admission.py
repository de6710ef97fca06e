"""Create-time defaults and admission give the objects a real kube-apiserver stores."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runtime.apiserver.admission import (
    AdmissionError,
    admit_create,
    admit_pod_create,
    default_object,
    image_tag,
    pod_qos_class,
)
from runtime.apiserver.quantity import canonical_quantity

TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


def _token_volume(name: str) -> dict[str, object]:
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


def test_kubectl_run_pod_gets_every_default() -> None:
    """What `kubectl run web --image=nginx` stores on a real cluster (kubectl get pod -o yaml)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"run": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {}}]},
        "status": {"phase": "Running", "podIP": "1.2.3.4"},  # client-sent status is discarded
    }
    out = admit_pod_create(pod)
    vol_name = out["spec"]["volumes"][0]["name"]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", vol_name)
    assert out == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"run": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "imagePullPolicy": "Always",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [
                        {
                            "name": vol_name,
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": TOLERATIONS,
            "volumes": [_token_volume(vol_name)],
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
    assert pod["spec"]["containers"][0] == {
        "name": "web",
        "image": "nginx",
        "resources": {},
    }  # input untouched


def test_token_mount_reaches_init_containers_but_not_existing_mounts() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [
                {"name": "a", "image": "busybox@sha256:" + "0" * 64},
                {
                    "name": "b",
                    "image": "r.example:5000/x/y:v1",
                    "volumeMounts": [
                        {"name": "own", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
                    ],
                },
            ],
            "volumes": [{"name": "own"}],
        },
    }
    out = admit_pod_create(pod)
    spec = out["spec"]
    token = spec["volumes"][1]["name"]
    assert spec["volumes"][0] == {"name": "own", "emptyDir": {}}  # a volume without source is an emptyDir
    assert spec["initContainers"][0]["volumeMounts"][0]["name"] == token
    assert spec["containers"][0]["volumeMounts"][0]["name"] == token
    assert spec["containers"][1]["volumeMounts"] == [
        {"name": "own", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    ]
    # imagePullPolicy by tag: digest-only and a real tag mean IfNotPresent, registry ports are not tags.
    assert [c["imagePullPolicy"] for c in spec["initContainers"] + spec["containers"]] == ["IfNotPresent"] * 3


@pytest.mark.parametrize(
    ("pod_flag", "sa_flag", "mounted"),
    [(False, None, False), (None, False, False), (True, False, True), (None, None, True), (None, True, True)],
)
def test_automount_pod_flag_wins_over_service_account(
    pod_flag: bool | None, sa_flag: bool | None, mounted: bool
) -> None:
    spec: dict[str, object] = {"containers": [{"name": "a", "image": "x:1"}], "serviceAccountName": "robot"}
    if pod_flag is not None:
        spec["automountServiceAccountToken"] = pod_flag
    out = admit_pod_create({"metadata": {"name": "p"}, "spec": spec}, sa_automount=sa_flag)
    assert ("volumes" in out["spec"]) is mounted
    assert out["spec"]["serviceAccount"] == "robot"


def test_existing_tolerations_suppress_defaults() -> None:
    tol_all = {"operator": "Exists"}
    out = admit_pod_create({"spec": {"containers": [{"name": "a", "image": "x"}], "tolerations": [tol_all]}})
    assert out["spec"]["tolerations"] == [tol_all]
    own = {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 5,
    }
    out = admit_pod_create({"spec": {"containers": [{"name": "a", "image": "x"}], "tolerations": [own]}})
    assert out["spec"]["tolerations"] == [own, TOLERATIONS[0]]


@pytest.mark.parametrize(
    ("containers", "qos"),
    [
        ([{"resources": {}}], "BestEffort"),
        (
            [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
            "Guaranteed",
        ),  # requests default to limits
        ([{"resources": {"limits": {"cpu": "1"}}}], "Burstable"),
        (
            [
                {
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "0.5", "memory": "1024Mi"},
                    }
                }
            ],
            "Guaranteed",
        ),
        (
            [{"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}}],
            "Burstable",
        ),
        ([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {"resources": {}}], "Burstable"),
        ([{"resources": {"requests": {"ephemeral-storage": "1Gi"}}}], "BestEffort"),  # only cpu/memory count
    ],
)
def test_qos_class(containers: list[dict[str, object]], qos: str) -> None:
    pod = {"spec": {"containers": [{"name": f"c{i}", "image": "x", **c} for i, c in enumerate(containers)]}}
    out = admit_pod_create(pod)
    assert out["status"]["qosClass"] == qos
    assert pod_qos_class(out) == qos


def test_limits_default_requests_and_quantities_are_canonical() -> None:
    out = admit_pod_create(
        {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "image": "x",
                        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                        "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": 80}},
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    }
                ]
            }
        }
    )
    c = out["spec"]["containers"][0]
    assert c["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "metadata.name", "apiVersion": "v1"}


def test_priority_admission() -> None:
    base = {"containers": [{"name": "a", "image": "x"}]}
    out = admit_pod_create({"spec": {**base, "priorityClassName": "system-node-critical"}})
    assert out["spec"]["priority"] == 2000001000
    with pytest.raises(AdmissionError, match="no PriorityClass with name gold was found") as exc:
        admit_pod_create({"spec": {**base, "priorityClassName": "gold"}})
    assert exc.value.code == 403
    with pytest.raises(AdmissionError, match=r"the integer value of priority \(7\) must not be provided"):
        admit_pod_create({"spec": {**base, "priority": 7}})


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
            "metadata": {"labels": {"app": "d"}},
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
    import json
    from pathlib import Path

    frames = {}
    for line in (
        (Path(__file__).parent.parent / "protocol" / "data" / "capture.jsonl").read_text().splitlines()
    ):
        f = json.loads(line)
        frames[f["seq"]] = f["msg"]["content"]
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


def test_pod_status_writes_get_typed_zero_values() -> None:
    pod = {
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
        },
    }
    out = default_object("pods", pod)
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": None}
    ]
    assert out["status"]["containerStatuses"] == [
        {
            "name": "c",
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "image": "",
            "imageID": "",
        }
    ]


def test_tracked_create_reproduces_recorded_pods_exactly() -> None:
    """`kubectl apply` of the recorded pods: spec, status and managedFields as the real server stored them."""
    import json
    from pathlib import Path

    from runtime.apiserver.admission import admit_create_tracked

    path = Path(__file__).parent.parent / "protocol" / "data" / "capture.jsonl"
    frames = [json.loads(line) for line in path.read_text().splitlines()]
    inserts = [
        f["msg"]["content"]
        for f in frames
        if f["msg"]["route"].get("operation") == "insert" and "/pod/" in f["msg"]["route"]["resource"]
    ]
    assert len(inserts) == 2
    for real in inserts:
        last_applied = real["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        sent = json.loads(last_applied)
        sent["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": last_applied}
        out = admit_create_tracked(
            "pods",
            sent,
            manager="kubectl-client-side-apply",
            time=real["metadata"]["managedFields"][0]["time"],
        )
        real_vol = next(
            v["name"] for v in real["spec"]["volumes"] if v["name"].startswith("kube-api-access-")
        )
        mine_vol = next(v["name"] for v in out["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
        assert json.loads(json.dumps(out["spec"]).replace(mine_vol, real_vol)) == real["spec"]
        assert out["metadata"]["managedFields"] == real["metadata"]["managedFields"]
        assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


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
