"""Pod admission: the defaults, token mount, tolerations, QoS and priority a real kube-apiserver gives
a created Pod, and the typed zero values of status writes."""

from __future__ import annotations

import json
import re

import pytest

from runtime.apiserver.admission.create import (
    AdmissionError,
    admit_create_tracked,
    admit_pod_create,
    default_object,
    pod_qos_class,
)
from tests.fixtures.edge import capture

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
    """The kube-api-access volume of a pod a real server stored (the recorded KubeEdge session), renamed."""
    recorded = next(
        v
        for f in capture()
        if f["msg"]["route"].get("operation") == "insert" and "/pod/" in f["msg"]["route"]["resource"]
        for v in f["msg"]["content"]["spec"]["volumes"]
        if v["name"].startswith("kube-api-access-")
    )
    return {**recorded, "name": name}


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
    inserts = [
        f["msg"]["content"]
        for f in capture()
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
