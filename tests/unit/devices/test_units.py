"""Pure parts of the device plane: MQTT framing, topic rules, typed values, twin payloads."""

from __future__ import annotations

import itertools

import pytest

from runtime.edge.devices import mqttcodec as mc
from runtime.edge.devices import twins as tw
from runtime.edge.devices import values
from runtime.edge.devices.topics import Trie, matches, valid_filter


def test_reader_reassembles_packets_fed_byte_by_byte_with_multi_byte_lengths() -> None:
    payload = b"x" * 300  # remaining length needs two bytes
    wire = mc.encode_publish("$hw/a", payload, qos=1, packet_id=7) + b"\xc0\x00"
    reader, got = mc.Reader(), []
    for i in range(len(wire)):
        got += reader.feed(wire[i : i + 1])
    assert got == [mc.Publish("$hw/a", payload, 1, False, False, 7), mc.Simple(mc.PINGREQ)]


@pytest.mark.parametrize(
    "wire",
    [
        b"\x82\x05\x00\x01\x00\x01a",  # SUBSCRIBE without its QoS byte
        b"\x80\x06\x00\x01\x00\x01a\x00",  # SUBSCRIBE with fixed-header flags 0 (must be 2)
        b"\x36\x05\x00\x01a\x00\x01",  # PUBLISH with QoS 3
        b"\x30\xff\xff\xff\xff\x01",  # remaining length of 5 bytes
        b"\xf0\x00",  # packet type 15 (reserved)
    ],
)
def test_malformed_packets_raise_protocol_error(wire: bytes) -> None:
    with pytest.raises(mc.ProtocolError):
        mc.Reader().feed(wire)


TOPICS = ["a", "a/b", "a/b/c", "$hw/events/x", "$SYS/x", "/a", "a/", "b/b"]
FILTERS = [
    "#",
    "+",
    "a/#",
    "a/+",
    "+/b",
    "+/+",
    "$hw/#",
    "$hw/+/x",
    "+/events/x",
    "/+",
    "a/+/c",
    "a/b",
    "+/#",
]


def test_trie_matches_the_same_as_the_reference_rule() -> None:
    trie: Trie[str] = Trie()
    for f in FILTERS:
        trie.add(f, f, 1)
    for t in TOPICS:
        assert {k for k, _ in trie.match(t)} == {f for f in FILTERS if matches(f, t)}, t
    assert not matches("#", "$hw/events/x") and matches("$hw/#", "$hw/events/x")
    assert matches("a/#", "a") and not matches("+", "a/b")
    for f in FILTERS:
        assert trie.remove(f, f)
    assert trie.count == 0 and not list(trie.match("a/b"))


@pytest.mark.parametrize(
    ("f", "ok"), [("a/#", True), ("a/#/b", False), ("a+", False), ("", False), ("+/+/#", True)]
)
def test_filter_validity(f: str, ok: bool) -> None:
    assert valid_filter(f) is ok


def test_one_type_mapping_for_both_spellings() -> None:
    for model, wire in values.MODEL_TO_WIRE.items():
        assert values.wire_type(model) == wire == values.wire_type(wire)
    assert values.wire_type("integer") == "int" and values.wire_type("nope") is None
    assert values.same("22", "22.0", "float") and not values.same("22", "22.0", "string")
    assert values.same("TRUE", "1", "boolean")
    for text, typ in itertools.product(["1.5", "abc", "nan"], ["int"]):
        with pytest.raises(values.BadValue):
            values.parse(text, typ)
    assert values.parse("2026-12-07T10:00:00Z", "timestamp") and values.parse("1796638147851", "timestamp")


def test_desired_from_the_cloud_wins_over_a_device_written_expected() -> None:
    dev = {
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"properties": [{"name": "p", "desired": {"value": "1"}}]},
    }
    model = {"spec": {"properties": [{"name": "p", "type": "INT"}]}}
    twin: dict[str, tw.State] = {}
    assert tw.apply_desired(twin, tw.spec_of(dev, model), 10) == ["p"]
    tw.apply_update(twin, tw.spec_of(dev, model), {"twin": {"p": {"expected": {"value": "5"}}}}, 11)
    assert twin["p"]["expected"]["value"] == "5"
    assert tw.apply_desired(twin, tw.spec_of(dev, model), 12) == []  # same desired: the device's stays
    dev["spec"]["properties"][0]["desired"]["value"] = "7"  # type: ignore[index]
    assert tw.apply_desired(twin, tw.spec_of(dev, model), 13) == ["p"]
    assert twin["p"]["expected"]["value"] == "7"
    assert twin["p"]["expected_version"] == {"cloud": 2, "edge": 1}


def test_edge_run_mqtt_flag_becomes_config_overrides() -> None:
    from runtime.edge.launcher import mqtt_sets
    from runtime.errors import UsageError

    assert mqtt_sets(None) == []
    assert mqtt_sets("off") == ["mqtt.mode=off"]
    assert mqtt_sets("external=tcp://127.0.0.1:1884") == [
        "mqtt.mode=external",
        "mqtt.url=tcp://127.0.0.1:1884",
    ]
    for bad in ("external", "embedded=x", "amqtt"):
        with pytest.raises(UsageError):
            mqtt_sets(bad)


def test_status_section_names_broker_devices_rejections_and_active_trouble() -> None:
    from kubeedge_cli.status_devices import section

    rows = dict(
        section(
            {
                "devices": {
                    "mode": "external",
                    "external": {"url": "tcp://127.0.0.1:1884", "connected": False, "connects": 3},
                    "devices": [{"id": "default/d1", "properties": 2, "state": "online", "lastReport": None}],
                    "rejected": {"400": 2, "404": 1},
                    "reports": {"sent": 5, "pendingReports": 1, "coalesced": 7},
                    "trouble": {"external-broker": {"count": 4, "last": "MQTT broker lost", "active": True}},
                }
            }
        )
    )
    assert rows["mqtt"] == "external broker tcp://127.0.0.1:1884 DISCONNECTED, 2 reconnect(s)"
    assert rows["devices"] == "1 device(s); 3 request(s) rejected (400: 2, 404: 1)"
    assert rows["reports"] == "5 sent to the cloud, 1 pending, 7 coalesced"
    assert rows["  default/d1"].startswith("2 properties, state online, last report never")
    assert rows["problem"] == "MQTT broker lost (4x, external-broker)"
