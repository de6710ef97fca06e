"""A DaemonSet's `deprecated.daemonset.template.generation` annotation (apps/v1's form of the internal
spec.templateGeneration), as a real kube-apiserver keeps it: 1 on create, one up whenever an update
changes the pod template, unchanged by other spec changes, and never set by the client on update."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.conftest import Kube

KEY = "deprecated.daemonset.template.generation"
MERGE = "application/merge-patch+json"


def daemonset(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
            },
        },
    }


def _seen(obj: dict[str, Any]) -> tuple[str, int]:
    return obj["metadata"]["annotations"][KEY], obj["metadata"]["generation"]


def test_template_generation_follows_template_changes(kube: Kube, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/daemonsets"
    r = kube.post(base, daemonset("ds"))
    assert r.status_code == 201, r.text
    assert _seen(r.json()) == ("1", 1)
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}}
    r = kube.patch(f"{base}/ds", image, MERGE)
    assert r.status_code == 200, r.text
    assert _seen(r.json()) == ("2", 2)
    r = kube.patch(f"{base}/ds", {"spec": {"minReadySeconds": 5}}, MERGE)
    assert r.status_code == 200, r.text
    assert _seen(r.json()) == ("2", 3)
    # the client cannot set it: the stored value stays
    body = kube.get(f"{base}/ds").json()
    body["metadata"]["annotations"][KEY] = "7"
    r = kube.put(f"{base}/ds", body)
    assert r.status_code == 200, r.text
    assert _seen(r.json()) == ("2", 3)
    labels = {"spec": {"template": {"metadata": {"labels": {"app": "ds", "tier": "x"}}}}}
    r = kube.patch(f"{base}/ds", labels, MERGE)
    assert r.status_code == 200, r.text
    assert _seen(r.json()) == ("3", 4)
