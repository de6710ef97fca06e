"""Table output has the columns and cells kube-apiserver's printers produce (kubectl prints them as is)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runtime.apiserver.printers.tables import human_duration, jsonpath_value, to_table

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
CREATED = "2026-11-28T11:55:00Z"  # 5m before NOW


def names(table: dict[str, Any], wide: bool = False) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
        (3000 * 86400, "8y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_pod_table_running_and_wide_columns() -> None:
    pod = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED, "uid": "u1"},
        "spec": {"nodeName": "edge-1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.7"}],
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "a",
                    "ready": True,
                    "restartCount": 2,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": "2026-11-28T11:59:00Z", "exitCode": 1}},
                },
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                },
            ],
        },
    }
    t = to_table("pods", [pod], now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert names(t) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert names(t, wide=True)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert t["columnDefinitions"][0]["format"] == "name"
    assert t["rows"][0]["cells"] == [
        "web",
        "1/2",
        "CrashLoopBackOff",
        "2 (60s ago)",
        "5m",
        "10.0.0.7",
        "edge-1",
        "<none>",
        "<none>",
    ]
    # includeObject defaults to Metadata: each row carries a PartialObjectMetadata.
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }


@pytest.mark.parametrize(
    ("status", "meta", "expected"),
    [
        ({"phase": "Pending"}, {}, "Pending"),
        (
            {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]},
            {},
            "Completed",
        ),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}]},
            {},
            "ExitCode:137",
        ),
        ({"phase": "Running"}, {"deletionTimestamp": CREATED}, "Terminating"),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}],
            },
            {},
            "Init:0/1",
        ),
        ({"phase": "Failed", "reason": "Evicted"}, {}, "Evicted"),
    ],
)
def test_pod_status_column(status: dict[str, Any], meta: dict[str, Any], expected: str) -> None:
    pod = {
        "metadata": {"name": "p", **meta},
        "spec": {
            "containers": [{"name": "c"}],
            "initContainers": [{"name": "i"}] if "initContainerStatuses" in status else [],
        },
        "status": status,
    }
    row = to_table("pods", [pod], now=NOW)["rows"][0]
    assert row["cells"][2] == expected
    if status["phase"] in ("Succeeded", "Failed"):
        assert row["conditions"][0]["type"] == "Completed"


def test_node_table() -> None:
    node = {
        "metadata": {
            "name": "edge-1",
            "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/agent": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "Unknown"}],
            "addresses": [
                {"type": "InternalIP", "address": "192.0.2.2"},
                {"type": "Hostname", "address": "e"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-kedge.0.1.0",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "docker://27",
            },
        },
    }
    t = to_table("nodes", [node], now=NOW)
    assert names(t) == ["Name", "Status", "Roles", "Age", "Version"]
    assert t["rows"][0]["cells"] == [
        "edge-1",
        "NotReady,SchedulingDisabled",
        "agent,edge",
        "5m",
        "v1.32.0-kedge.0.1.0",
        "192.0.2.2",
        "<none>",
        "Debian",
        "6.1",
        "docker://27",
    ]
    bare = to_table("nodes", [{"metadata": {"name": "n"}}], now=NOW)["rows"][0]["cells"]
    assert bare[:4] == ["n", "Unknown", "<none>", "<unknown>"]


def test_event_deployment_service_and_simple_tables() -> None:
    ev = {
        "metadata": {"name": "p.1", "namespace": "default"},
        "type": "Normal",
        "reason": "Scheduled",
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": ""},
        "message": " assigned \n",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": CREATED,
        "lastTimestamp": CREATED,
    }
    t = to_table("events", [ev], now=NOW)
    assert names(t) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert t["rows"][0]["cells"] == [
        "5m",
        "Normal",
        "Scheduled",
        "pod/p",
        "",
        "default-scheduler",
        "assigned",
        "5m",
        1,
        "p.1",
    ]
    dep = {
        "metadata": {"name": "d", "creationTimestamp": CREATED},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    t = to_table("deployments", [dep], now=NOW)
    assert names(t) == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert t["rows"][0]["cells"] == ["d", "2/3", 3, 2, "5m", "c", "nginx:1", "app=d"]
    svc = {
        "metadata": {"name": "s", "creationTimestamp": CREATED},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "s"},
        },
    }
    assert to_table("services", [svc], now=NOW)["rows"][0]["cells"] == [
        "s",
        "NodePort",
        "10.96.0.10",
        "<none>",
        "80:30080/TCP,53/UDP",
        "5m",
        "app=s",
    ]
    cm = {"metadata": {"name": "c", "creationTimestamp": CREATED}, "data": {"a": "1", "b": "2"}}
    assert to_table("configmaps", [cm], now=NOW)["rows"][0]["cells"] == ["c", 2, "5m"]
    sec = {"metadata": {"name": "s", "creationTimestamp": CREATED}, "type": "Opaque", "data": {"k": "dg=="}}
    assert to_table("secrets", [sec], now=NOW)["rows"][0]["cells"] == ["s", "Opaque", 1, "5m"]
    lease = {"metadata": {"name": "n", "creationTimestamp": CREATED}, "spec": {"holderIdentity": "edge-1"}}
    assert to_table("leases", [lease], now=NOW)["rows"][0]["cells"] == ["n", "edge-1", "5m"]
    ns = {"metadata": {"name": "default", "creationTimestamp": CREATED}, "status": {"phase": "Active"}}
    assert to_table("namespaces", [ns], now=NOW)["rows"][0]["cells"] == ["default", "Active", "5m"]


def test_default_table_and_include_object() -> None:
    role = {"metadata": {"name": "r", "creationTimestamp": "2026-11-28T11:55:00+00:00"}}
    t = to_table("roles", [role], include_object="None", now=NOW)
    assert names(t) == ["Name", "Created At"]
    assert t["columnDefinitions"][1]["type"] == "date"
    assert t["rows"] == [{"cells": ["r", "2026-11-28T11:55:00Z"]}]
    assert to_table("roles", [role], include_object="Object", now=NOW)["rows"][0]["object"] is role


def test_crd_printer_columns() -> None:
    cols = [
        {"name": "Protocol", "type": "string", "jsonPath": ".spec.protocol.name"},
        {"name": "Twins", "type": "integer", "jsonPath": ".status.count", "priority": 1},
        {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
        {"name": "Props", "type": "string", "jsonPath": ".spec.props"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    dev = {
        "metadata": {"name": "d1", "creationTimestamp": CREATED},
        "spec": {"protocol": {"name": "modbus"}, "props": ["a", "b"]},
        "status": {"count": 2.0},
    }
    t = to_table("devices", [dev], cols, now=NOW)
    assert names(t, wide=True) == ["Name", "Protocol", "Twins", "Ready", "Props", "Age"]
    assert t["columnDefinitions"][1]["description"] == (
        "Custom resource definition column (in JSONPath format): .spec.protocol.name"
    )
    assert t["rows"][0]["cells"] == ["d1", "modbus", 2, None, '["a","b"]', "5m"]
    # A CRD without printer columns gets Name and Age.
    t = to_table("devices", [dev], [], now=NOW)
    assert names(t) == ["Name", "Age"] and t["rows"][0]["cells"] == ["d1", "5m"]


def test_jsonpath_forms() -> None:
    obj = {"a": {"b.c": [{"d": 1}]}}
    assert jsonpath_value(obj, ".a['b.c'][0].d") == (True, 1)
    assert jsonpath_value(obj, "{.a.x}") == (False, None)
