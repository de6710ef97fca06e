"""The sans-I/O rules of the cloud's device plane: which node holds what, and reports → DeviceStatus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.cloud.devices.controller import membership_message
from runtime.cloud.devices.reports import (
    BadReport,
    body_of,
    merge_changes,
    merged_twins,
    parse_upstream,
    state_change,
    status_object,
    twin_changes,
)
from runtime.cloud.devices.world import DeviceWorld


def dev(name: str, node: str, props: tuple[str, ...] = ("temperature",), uid: str = "", rv: str = "1") -> Any:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": uid or f"u-{name}", "resourceVersion": rv},
        "spec": {
            "nodeName": node,
            "deviceModelRef": {"name": "m"},
            "properties": [{"name": p, "desired": {"value": "1"}} for p in props],
        },
    }


MODEL = {"metadata": {"name": "m", "namespace": "default", "uid": "u-m", "resourceVersion": "5"}}


def test_world_sends_a_device_and_its_model_to_its_node_and_moves_it() -> None:
    w = DeviceWorld()
    assert w.apply("DeviceModel", "ADDED", MODEL) == set()  # nobody uses it yet
    assert w.apply("Device", "ADDED", dev("d", "n1")) == {"n1"}
    assert set(w.desired("n1")) == {"u-d", "u-m"}
    assert w.desired("n1")["u-m"].resource == "default/devicemodel/m"
    assert w.desired("n1")["u-d"].resource == "default/device/d"
    assert w.apply(
        "DeviceModel", "MODIFIED", {**MODEL, "metadata": {**MODEL["metadata"], "resourceVersion": "6"}}
    ) == {"n1"}
    assert w.apply("Device", "MODIFIED", dev("d", "n2", rv="2")) == {"n1", "n2"}
    assert w.desired("n1") == {} and set(w.desired("n2")) == {"u-d", "u-m"}
    assert w.device("default/d") is not None
    assert w.apply("Device", "MODIFIED", dev("d", "", rv="3")) == {"n2"}  # unbound: nowhere
    assert w.desired("n2") == {} and w.desired("") == {}
    assert w.apply("Device", "DELETED", dev("d", "")) == set()
    assert w.device("default/d") is None


def test_membership_carries_only_id_name_description_and_null_for_none() -> None:
    m = membership_message([dev("a", "n")], [])
    assert (m.source, m.group, m.operation, m.resource) == (
        "devicecontroller",
        "twin",
        "update",
        "membership",
    )
    assert m.content["added_devices"] == [{"id": "default/a", "name": "a"}]
    assert m.content["removed_devices"] is None
    assert set(m.content) == {"event_id", "timestamp", "added_devices", "removed_devices"}


def test_upstream_resources() -> None:
    assert parse_upstream("device/default/d/twin/edge_updated") == ("twin", "default/d")
    assert parse_upstream("device/ns/d/state/update") == ("state", "ns/d")
    for other in ("device/d/twin/edge_updated", "membership/detail", "device/ns/d/twin/cloud_updated", ""):
        assert parse_upstream(other) is None


def test_twin_report_maps_actual_and_expected_and_ignores_unknown_properties() -> None:
    d = dev("d", "n", ("temperature", "humidity"))
    report = body_of(
        json.dumps(
            {
                "event_id": "e",
                "timestamp": 1,
                "twin": {
                    "temperature": {
                        "actual": {"value": "21", "metadata": {"timestamp": 1000}},
                        "expected": {"value": "20", "metadata": {"timestamp": 900}},
                        "metadata": {"type": "int"},
                        "actual_version": {"cloud": 1, "edge": 2},
                        "optional": False,
                    },
                    "pressure": {"actual": {"value": "1"}},
                },
            }
        )
    )
    changes, ignored = twin_changes(d, report)
    assert ignored == 1
    assert changes == {
        "temperature": {
            "reported": {"value": "21", "metadata": {"timestamp": "1000", "type": "int"}},
            "observedDesired": {"value": "20", "metadata": {"timestamp": "900", "type": "int"}},
        }
    }
    later, _ = twin_changes(d, {"twin": {"humidity": {"actual": {"value": "40"}}}})
    twins = merged_twins(
        d,
        [{"propertyName": "temperature"}, {"propertyName": "gone", "reported": {}}],
        merge_changes(changes, later),
    )
    assert [t["propertyName"] for t in twins] == ["temperature", "humidity"]  # spec order, stale dropped
    assert twins[1] == {"propertyName": "humidity", "reported": {"value": "40", "metadata": {}}}
    with pytest.raises(BadReport):
        twin_changes(d, {"no": "twin"})
    with pytest.raises(BadReport):
        body_of("{not json")


def test_state_report_sets_last_online_only_for_online_and_ok() -> None:
    assert state_change({"state": "online", "lastOnline": "2026-12-07 10:00:00"}) == {
        "state": "online",
        "lastOnlineTime": "2026-12-07 10:00:00",
    }
    nested = {
        "event_id": "e",
        "timestamp": 1,
        "device": {"name": "d", "state": "online", "lastOnlineTime": "t"},
    }
    assert state_change(nested) == {"state": "online", "lastOnlineTime": "t"}  # edgecore's shape
    assert state_change({"state": "ok"}, now=0.0) == {"state": "ok", "lastOnlineTime": "1970-01-01T00:00:00Z"}
    assert state_change({"state": "OK"}, now=0.0)["state"] == "OK"  # verbatim, as cloudcore writes it
    for s in ("offline", "unknown", "unhealthy"):
        assert state_change({"state": s, "lastOnline": "x"}) == {"state": s}
    with pytest.raises(BadReport):
        state_change({"state": "exploded"})


def test_devicestatus_is_owned_by_its_device() -> None:
    st = status_object(dev("d", "n"))
    assert st["metadata"]["name"] == "d" and st["metadata"]["namespace"] == "default"
    (ref,) = st["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "devices.kubeedge.io/v1beta1",
        "kind": "Device",
        "name": "d",
        "uid": "u-d",
        "controller": True,
    }
    assert st["spec"] == {} and "status" not in st  # as cloudcore creates it
