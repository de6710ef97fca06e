"""What a real kube-apiserver fills in on create: defaults, ServiceAccount token volume, QoS, tolerations."""

from __future__ import annotations

import re

from tests.kubeapi.conftest import Kube, deployment, pod
from tests.unit.apiserver.test_admission_pods import TOLERATIONS


def _create(kube: Kube, path: str, body: dict) -> dict:  # type: ignore[type-arg]
    r = kube.post(path, body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_pod_gets_token_volume_defaults_and_tolerations(kube: Kube, ns: str) -> None:
    body = pod("p")
    body["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    p = _create(kube, f"/api/v1/namespaces/{ns}/pods", body)
    spec = p["spec"]
    vol = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
    assert re.fullmatch(r"kube-api-access-[a-z0-9]{5}", vol["name"])
    assert vol["projected"]["defaultMode"] == 420
    assert vol["projected"]["sources"] == [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "downwardAPI": {
                "items": [
                    {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                ]
            }
        },
    ]
    for c in spec["initContainers"] + spec["containers"]:
        assert {
            "name": vol["name"],
            "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        } in c["volumeMounts"]
        assert c["terminationMessagePath"] == "/dev/termination-log"
        assert c["terminationMessagePolicy"] == "File"
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"  # no tag means :latest
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert spec["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True and spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["securityContext"] == {}
    assert spec["tolerations"] == TOLERATIONS
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_automount_false_and_qos_classes(kube: Kube, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    p = _create(kube, base, pod("nomount", automountServiceAccountToken=False))
    assert "volumes" not in p["spec"] and "volumeMounts" not in p["spec"]["containers"][0]
    g = pod("guaranteed")
    g["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "0.5", "memory": "64Mi"}}
    p = _create(kube, base, g)
    assert p["status"]["qosClass"] == "Guaranteed"
    # Requests default to limits, and quantities come back in canonical form.
    assert p["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "64Mi"},
        "requests": {"cpu": "500m", "memory": "64Mi"},
    }
    b = pod("burstable")
    b["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m"}}
    assert _create(kube, base, b)["status"]["qosClass"] == "Burstable"


def test_deployment_service_secret_namespace_defaults(kube: Kube, ns: str) -> None:
    dep = deployment("d", replicas=None, containers=[{"name": "c", "image": "nginx:1.27"}])
    d = _create(kube, f"/apis/apps/v1/namespaces/{ns}/deployments", dep)
    spec = d["spec"]
    assert (
        spec["replicas"] == 1
        and spec["revisionHistoryLimit"] == 10
        and spec["progressDeadlineSeconds"] == 600
    )
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    tpl = spec["template"]["spec"]
    assert tpl["restartPolicy"] == "Always" and tpl["dnsPolicy"] == "ClusterFirst"
    assert tpl["schedulerName"] == "default-scheduler" and tpl["terminationGracePeriodSeconds"] == 30
    assert "enableServiceLinks" not in tpl and "tolerations" not in tpl  # pod-only defaults and admission
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"selector": {"app": "d"}, "ports": [{"port": 80}]},
    }
    s = _create(kube, f"/api/v1/namespaces/{ns}/services", svc)["spec"]
    assert s["type"] == "ClusterIP" and s["sessionAffinity"] == "None"
    assert s["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    sec = _create(
        kube,
        f"/api/v1/namespaces/{ns}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"k": "v"}},
    )
    assert sec["type"] == "Opaque" and sec["data"] == {"k": "dg=="}
    name = ns + "-x"
    n = _create(
        kube, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    try:
        assert n["metadata"]["labels"] == {"kubernetes.io/metadata.name": name}
        assert n["spec"] == {"finalizers": ["kubernetes"]} and n["status"] == {"phase": "Active"}
    finally:
        kube.delete(f"/api/v1/namespaces/{name}")
