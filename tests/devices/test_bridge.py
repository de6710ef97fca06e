"""The bridge on the embedded broker with real device clients: KubeEdge's topics, payload shapes (as the
recorded edgecore answers, ../shared/kubeedge-mqtt/), every rejection case, desired values as deltas."""

from __future__ import annotations

import json
import subprocess

import pytest

from runtime.protocol import new_message
from tests.devices.conftest import PlaneHandle
from tests.devices.mqttclient import LINE_BUFFERED, MODEL, Client, clients, device, subscribed, twin_update
from tests.fixtures import find_binary

DEV = "$hw/events/device/default/thermostat-01"


def _device_client(plane: PlaneHandle, make: object) -> Client:
    c: Client = make("thermostat-01")  # type: ignore[operator]
    return c.sub(f"{DEV}/#", "$hw/events/node/+/membership/#")


def test_update_answers_result_document_and_the_clouds_desired_value_as_delta(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(f"{DEV}/twin/update", twin_update("e-1", temperature="23.4"))
        result = dev.get(topic=f"{DEV}/twin/update/result").json()
        ts = result["timestamp"]
        assert result == {
            "event_id": "e-1",
            "timestamp": ts,
            "twin": {
                "temperature": {
                    "actual": {"value": "23.4", "metadata": {"timestamp": ts}},
                    "optional": True,
                    "metadata": {"type": "float"},
                }
            },
        }
        doc = dev.get(topic=f"{DEV}/twin/update/document").json()
        assert doc["event_id"] == "e-1" and doc["twin"]["temperature"]["last"] is None
        assert doc["twin"]["temperature"]["current"] == result["twin"]["temperature"]
        delta = dev.get(topic=f"{DEV}/twin/update/delta").json()
        assert delta["delta"] == {"setpoint": "21.5"}  # Device.spec.properties[].desired (edgecore: never)
        assert delta["twin"]["setpoint"]["expected"]["value"] == "21.5"
        dev.pub(f"{DEV}/twin/update", twin_update("e-2", temperature="23.9"))
        doc2 = dev.get(topic=f"{DEV}/twin/update/document").json()
        assert doc2["twin"]["temperature"]["last"]["actual"]["value"] == "23.4"


def test_a_device_that_reaches_the_desired_value_gets_no_more_delta_typed_equality(
    plane: PlaneHandle,
) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(f"{DEV}/twin/update", twin_update("e-1", setpoint="21.50"))  # == 21.5 as a float
        dev.get(topic=f"{DEV}/twin/update/result")
        assert [g.topic for g in dev.none(0.5) if g.topic.endswith("/delta")] == []


def test_twin_get_returns_every_twin_then_the_delta(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(f"{DEV}/twin/get", json.dumps({"event_id": "g-1", "timestamp": 1}))
        got = dev.get(topic=f"{DEV}/twin/get/result").json()
        assert got["event_id"] == "g-1"
        assert got["twin"]["setpoint"]["expected"]["value"] == "21.5"
        assert set(got["twin"]) == {"temperature", "setpoint", "count", "enabled"}
        assert dev.get(topic=f"{DEV}/twin/update/delta").json()["delta"] == {"setpoint": "21.5"}


def _rejection(dev: Client, topic: str, payload: bytes | str) -> dict[str, object]:
    dev.pub(topic, payload)
    got = dev.get(topic=topic + "/result").json()
    assert set(got) == {"event_id", "timestamp", "code", "reason"}, got
    return dict(got)


@pytest.mark.parametrize(
    ("twin", "code", "reason"),
    [
        ({"temperature": {"actual": {"value": "abc"}}}, 400, "is not float"),
        ({"temperature": {"actual": {"value": "101"}}}, 400, "out of range: maximum is 100"),
        ({"temperature": {"actual": {"value": "-41"}}}, 400, "out of range: minimum is -40"),
        ({"count": {"actual": {"value": "2.5"}}}, 400, "is not int"),
        ({"enabled": {"actual": {"value": "maybe"}}}, 400, "is not boolean"),
        ({"humidity": {"actual": {"value": "40"}}}, 404, "humidity is not a property"),
        (
            {"temperature": {"actual": {"value": "22"}}, "setpoint": {"actual": {"value": "x"}}},
            400,
            "is not float",
        ),
        ({"bad name": {"actual": {"value": "1"}}}, 400, "twin name"),
        ({"temperature": {"actual": {"value": {"nested": 1}}}}, 400, "must be a string"),
    ],
)
def test_a_bad_twin_update_is_rejected_on_the_devices_own_result_topic(
    plane: PlaneHandle, twin: dict[str, object], code: int, reason: str
) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        got = _rejection(dev, f"{DEV}/twin/update", json.dumps({"event_id": "bad-1", "twin": twin}))
        assert (got["event_id"], got["code"]) == ("bad-1", code) and reason in str(got["reason"])
        dev.pub(f"{DEV}/twin/get", json.dumps({"event_id": "g"}))
        stored = dev.get(topic=f"{DEV}/twin/get/result").json()["twin"]
        assert "actual" not in stored.get("temperature", {})  # all or nothing: nothing was stored
    assert plane.status()["rejected"][str(code)] == 1


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"garbage", 400, "not JSON"),
        (b'{"event_id": "nt-1"}', 400, "key:twin does not exist"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (
            json.dumps({"event_id": "big", "twin": {"temperature": {"actual": {"value": "1" * 33000}}}}),
            413,
            "over",
        ),
    ],
)
def test_a_malformed_or_oversize_payload_is_answered_not_dropped(
    plane: PlaneHandle, payload: bytes | str, code: int, reason: str
) -> None:
    with clients(*plane.address) as make:
        got = _rejection(_device_client(plane, make), f"{DEV}/twin/update", payload)
        assert got["code"] == code and reason in str(got["reason"])


def test_unknown_device_and_name_only_id_are_rejected_with_404(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = make("x").sub("$hw/events/device/#")
        got = _rejection(
            dev, "$hw/events/device/default/no-such/twin/update", twin_update("u-1", temperature="1")
        )
        assert got == {**got, "event_id": "u-1", "code": 404}
        got = _rejection(dev, "$hw/events/device/default/no-such/twin/get", b'{"event_id":"u-2"}')
        assert got["code"] == 404
        got = _rejection(
            dev, "$hw/events/device/thermostat-01/twin/update", twin_update("u-3", temperature="1")
        )
        assert got["code"] == 404 and "namespace" in str(got["reason"])


def test_versions_never_reject_and_a_json_number_is_accepted(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        for i, version in enumerate([{"cloud": 0, "edge": 0}, {"cloud": 99, "edge": -5}, "junk"]):
            body = {
                "event_id": f"v-{i}",
                "twin": {"temperature": {"actual": {"value": 20 + i}, "actual_version": version}},
            }
            dev.pub(f"{DEV}/twin/update", json.dumps(body))
            got = dev.get(topic=f"{DEV}/twin/update/result").json()
            assert got["twin"]["temperature"]["actual"]["value"] == str(20 + i), got


def test_expected_written_by_a_device_is_accepted_until_the_cloud_changes_desired(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(
            f"{DEV}/twin/update",
            json.dumps({"event_id": "x-1", "twin": {"setpoint": {"expected": {"value": "19"}}}}),
        )
        assert dev.get(topic=f"{DEV}/twin/update/delta").json()["delta"] == {"setpoint": "19"}
        plane.objects["device"] = [device(desired="25", rv="9")]  # the Agent cached the cloud's update
        msg = new_message(
            "devicecontroller",
            "resource",
            "update",
            "default/device/thermostat-01",
            device(desired="25", rv="9"),
        )
        plane.lt.call(plane.plane.on_cloud(msg))
        assert dev.get(topic=f"{DEV}/twin/update/delta").json()["delta"] == {"setpoint": "25"}


def test_state_update_and_membership(plane: PlaneHandle) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(f"{DEV}/state/update", json.dumps({"event_id": "s-1", "state": "online"}))
        got = dev.get(topic=f"{DEV}/state/update/result").json()
        assert got["event_id"] != "s-1"  # edgecore answers with a fresh id
        assert got["device"]["name"] == "thermostat-01" and got["device"]["state"] == "online"
        assert got["device"]["lastOnlineTime"].endswith("Z")
        dev.pub(f"{DEV}/state/update", json.dumps({"event_id": "s-2", "state": "offline"}))
        assert "lastOnlineTime" not in dev.get(topic=f"{DEV}/state/update/result").json()["device"]
        bad = _rejection(dev, f"{DEV}/state/update", json.dumps({"event_id": "s-3", "state": "sleeping"}))
        assert bad["code"] == 400 and bad["event_id"] == "s-3"
        dev.pub("$hw/events/node/other-node/membership/get", json.dumps({"event_id": "m-1"}))
        mem = dev.get(
            topic="$hw/events/node/n1/membership/get/result"
        ).json()  # answered as edgecore: own node
        assert mem["event_id"] == "m-1"
        assert [(d["id"], d["name"]) for d in mem["devices"]] == [("default/thermostat-01", "thermostat-01")]
        assert "setpoint" in mem["devices"][0]["twin"]
        bad = _rejection(dev, "$hw/events/node/n1/membership/get", b"no json")
        assert bad["code"] == 400


def test_membership_updates_from_the_cloud_reach_mqtt_and_removal_forgets_the_device(
    plane: PlaneHandle,
) -> None:
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        body = {"event_id": "c-1", "timestamp": 1, "added_devices": None,
                "removed_devices": [{"id": "default/thermostat-01", "name": "thermostat-01"}]}  # fmt: skip
        plane.lt.call(
            plane.plane.on_cloud(new_message("devicecontroller", "twin", "update", "membership", body))
        )
        got = dev.get(topic="$hw/events/node/n1/membership/updated").json()
        assert got["removed_devices"] == body["removed_devices"] and got["added_devices"] is None
        got = _rejection(dev, f"{DEV}/twin/update", twin_update("after", temperature="1"))
        assert got["code"] == 404


@pytest.mark.broker
def test_mosquitto_clients_as_a_device(plane: PlaneHandle) -> None:
    host, port = plane.address
    sub = subprocess.Popen(
        [*LINE_BUFFERED, find_binary("mosquitto_sub") or "mosquitto_sub", "-h", host, "-p", str(port),
         "-q", "1", "-C", "1", "-t", f"{DEV}/twin/update/result", "-d"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        subscribed(sub)
        subprocess.run(
            [find_binary("mosquitto_pub") or "mosquitto_pub", "-h", host, "-p", str(port), "-q", "1",
             "-t", f"{DEV}/twin/update", "-m", twin_update("mp-1", temperature="22.2").decode()],
            check=True, timeout=10,
        )  # fmt: skip
        out, _ = sub.communicate(timeout=10)
    finally:
        sub.kill()
    payload = next(line for line in out.splitlines() if line.startswith(b"{"))  # amid the -d lines
    assert json.loads(payload)["twin"]["temperature"]["actual"]["value"] == "22.2"


def test_model_type_spelling_is_accepted_for_a_twin_outside_the_model(tmp_path: object) -> None:
    """edgecore rejects metadata.type FLOAT ('the value type is not allowed'); kedge maps it."""
    from runtime.edge.devices import twins as tw

    twin: dict[str, dict[str, object]] = {}
    upd = tw.apply_update(
        twin,
        None,
        {"event_id": "f", "twin": {"x": {"actual": {"value": "1.5"}, "metadata": {"type": "FLOAT"}}}},
        1,
    )
    assert upd.result["twin"]["x"]["metadata"] == {"type": "float"}
    assert MODEL["spec"]["properties"][0]["type"] == "FLOAT"


def test_a_failing_cache_write_is_counted_and_the_broker_keeps_serving(plane: PlaneHandle) -> None:
    import sqlite3

    store = plane.plane.store
    assert store is not None
    real = store._commit

    def broken(ops: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")  # the cache's disk failing under us

    store._commit = broken  # type: ignore[method-assign]
    with clients(*plane.address) as make:
        dev = _device_client(plane, make)
        dev.pub(f"{DEV}/twin/update", twin_update("io-1", temperature="20"))
        dev.pub(f"{DEV}/twin/update", twin_update("io-2", temperature="21"))
        assert [g for g in dev.none(0.5) if g.topic.endswith("/result")] == []  # never answered as stored
        trouble = plane.status()["trouble"]["bridge"]
        assert trouble["count"] == 2 and "disk I/O error" in trouble["last"]
        store._commit = real  # type: ignore[method-assign]
        dev.pub(f"{DEV}/twin/get", b'{"event_id":"g"}')
        assert "actual" not in dev.get(topic=f"{DEV}/twin/get/result").json()["twin"]["temperature"]
        dev.pub(f"{DEV}/twin/update", twin_update("io-3", temperature="22"))
        assert dev.get(topic=f"{DEV}/twin/update/result").json()["event_id"] == "io-3"
