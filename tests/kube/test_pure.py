"""Pure helpers: URL building, selectors, YAML loading and the relist diff."""

from __future__ import annotations

import pytest

from runtime.kube.resources import DEVICES, NODES, PODS, Res, load_yaml, lookup
from runtime.kube.watch import relist_diff
from runtime.kube.wire import selector


def test_paths() -> None:
    assert PODS.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert PODS.path(None) == "/api/v1/pods"
    assert NODES.path("ignored", "n1") == "/api/v1/nodes/n1"
    assert DEVICES.path("d") == "/apis/devices.kubeedge.io/v1beta1/namespaces/d/devices"
    assert lookup("apps/v1", "StatefulSet") == Res("apps", "v1", "StatefulSet", "statefulsets", True)
    assert lookup("example.com/v1", "Nope") is None


def test_selector() -> None:
    assert selector({"a": "b", "node-role.kubernetes.io/edge": ""}) == "a=b,node-role.kubernetes.io/edge"
    assert selector("a in (x,y),!b") == "a in (x,y),!b"
    assert selector(None) is None and selector({}) is None


def test_load_yaml_flattens_lists_and_rejects_junk() -> None:
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: kubeedge}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: kubeedge}}
---
"""
    assert [o["kind"] for o in load_yaml(text)] == ["Namespace", "ConfigMap"]
    with pytest.raises(ValueError, match="apiVersion"):
        load_yaml("just: a map\n")


def obj(name: str, uid: str, rv: str, ns: str = "default") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv}}


def test_relist_diff() -> None:
    store = {
        ("default", n, u): obj(n, u, rv) for n, u, rv in (("a", "1", "5"), ("b", "2", "6"), ("c", "3", "7"))
    }
    fresh = [obj("a", "1", "5"), obj("b", "2", "9"), obj("c", "30", "10"), obj("d", "4", "11")]
    events = relist_diff(store, fresh)
    got = [(t, o["metadata"]["name"], o["metadata"]["uid"]) for t, o in events]  # type: ignore[index]
    assert got == [("DELETED", "c", "3"), ("MODIFIED", "b", "2"), ("ADDED", "c", "30"), ("ADDED", "d", "4")]
    assert set(store) == {
        ("default", "a", "1"),
        ("default", "b", "2"),
        ("default", "c", "30"),
        ("default", "d", "4"),
    }
