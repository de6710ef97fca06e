"""Broker conformance for what devices and the bridge rely on — the same checks against the embedded
broker and against mosquitto, with real clients (paho-mqtt, mosquitto_pub/sub, raw sockets)."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import time

import pytest

from tests.devices.mqttclient import LINE_BUFFERED, clients, subscribed
from tests.fixtures import find_binary


def _connect_packet(client_id: str, keepalive: int, will: tuple[str, bytes] | None = None) -> bytes:
    """A hand-built MQTT 3.1.1 CONNECT (independent of the broker's own codec)."""

    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    flags = 0x02 | (0x04 | 0x08 if will else 0)  # clean session; will at QoS 1
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + s(client_id.encode())
    if will:
        body += s(will[0].encode()) + s(will[1])
    return bytes([0x10, len(body)]) + body


@pytest.mark.broker
def test_device_publish_on_dollar_hw_topic_is_accepted(any_broker: tuple[str, int]) -> None:
    """amqtt drops a client that publishes to $hw/…; every KubeEdge device does exactly that."""
    host, port = any_broker
    topic = "$hw/events/device/default/d1/twin/update"
    with clients(host, port) as make:
        sub = make("watcher").sub("$hw/#")
        done = subprocess.run(
            [find_binary("mosquitto_pub") or "mosquitto_pub", "-h", host, "-p", str(port), "-q", "1",
             "-t", topic, "-m", '{"event_id":"x"}'],
            capture_output=True, timeout=10,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        got = sub.get(topic=topic)
        assert got.payload == b'{"event_id":"x"}'


def test_wildcards_and_dollar_topic_rules(any_broker: tuple[str, int]) -> None:
    host, port = any_broker
    with clients(host, port) as make:
        hash_all = make("all").sub("#")
        dollar = make("dollar").sub("$hw/#")
        plus = make("plus").sub("+/b")
        plus_first = make("plusfirst").sub("+/events/x")
        pub = make("pub")
        pub.pub("$hw/events/x", b"1")
        pub.pub("a/b", b"2")
        pub.pub("a/b/c", b"3")
        assert [g.topic for g in hash_all.none(0.5)] == ["a/b", "a/b/c"]  # '#' never sees $-topics
        assert [g.topic for g in dollar.none(0.3)] == ["$hw/events/x"]
        assert [g.topic for g in plus.none(0.3)] == ["a/b"]  # '+' is one level only
        assert plus_first.none(0.3) == []  # a leading '+' does not match '$hw'


def test_retained_message_reaches_a_later_subscriber_and_an_empty_one_clears_it(
    any_broker: tuple[str, int],
) -> None:
    host, port = any_broker
    with clients(host, port) as make:
        make("pub").pub("r/config", b"v1", retain=True)
        got = make("late").sub("r/#").get()
        assert (got.topic, got.payload, got.retain) == ("r/config", b"v1", True)
        make("pub2").pub("r/config", b"", retain=True)
        assert make("later").sub("r/#").none(0.5) == []


def test_qos1_unacknowledged_message_is_redelivered_to_a_persistent_session(
    any_broker: tuple[str, int],
) -> None:
    host, port = any_broker
    with clients(host, port) as make:
        first = make("persist-1", clean=False, manual_ack=True).sub("q/t", qos=1)
        make("pub").pub("q/t", b"m1", qos=1)
        got = first.get()
        assert got.payload == b"m1" and got.qos == 1  # received, never acknowledged
        first.close()
        again = make("persist-1", clean=False)  # no new SUBSCRIBE: the session kept it
        assert again.session_present is True
        red = again.get()
        assert (red.payload, red.qos, red.dup) == (b"m1", 1, True)
        make("pub").pub("q/t", b"m2", qos=1)
        assert again.get().payload == b"m2"


def test_clean_session_forgets_subscriptions(any_broker: tuple[str, int]) -> None:
    host, port = any_broker
    with clients(host, port) as make:
        make("c1", clean=True).sub("c/t").close()
        back = make("c1", clean=True)
        assert back.session_present is False
        make("pub").pub("c/t", b"x")
        assert back.none(0.4) == []


@pytest.mark.broker
def test_will_is_published_when_a_client_dies_and_not_after_disconnect(any_broker: tuple[str, int]) -> None:
    host, port = any_broker
    sub_bin = find_binary("mosquitto_sub") or "mosquitto_sub"
    with clients(host, port) as make:
        watcher = make("watch").sub("wills/#")
        args = [sub_bin, "-h", host, "-p", str(port), "-t", "never/x", "-q", "1"]
        will = ["--will-topic", "wills/dying", "--will-payload", "gone"]
        dying = subprocess.Popen(
            [*LINE_BUFFERED, *args, "-d", "-i", "dying", *will],
            stdout=subprocess.PIPE,
        )
        subscribed(dying)
        dying.send_signal(signal.SIGKILL)  # the connection ends without DISCONNECT
        dying.wait()
        got = watcher.get()
        assert (got.topic, got.payload) == ("wills/dying", b"gone")
        polite = subprocess.Popen(  # no -d here: it held its exit on SIGINT past 5 s
            [*args, "-i", "polite", "--will-topic", "wills/polite", "--will-payload", "x"]
        )
        time.sleep(0.5)  # its CONNECT is in (no event without -d)
        polite.send_signal(signal.SIGINT)  # mosquitto_sub sends DISCONNECT on SIGINT
        polite.wait(5)
        assert watcher.none(0.5) == []


def test_keepalive_silence_closes_the_connection_and_fires_the_will(any_broker: tuple[str, int]) -> None:
    host, port = any_broker
    with clients(host, port) as make:
        watcher = make("watch-ka").sub("wills/#")
        sock = socket.create_connection((host, port), timeout=5)
        try:
            sock.sendall(_connect_packet("silent", keepalive=1, will=("wills/silent", b"timeout")))
            assert sock.recv(4)[:1] == b"\x20"  # CONNACK
            sock.settimeout(15)  # mosquitto checks keepalives every few seconds
            assert sock.recv(16) == b""  # the broker closed it: 1.5 x keepalive without a packet
        finally:
            sock.close()
        assert watcher.get(10).payload == b"timeout"


def test_pingreq_keeps_a_connection_alive(any_broker: tuple[str, int]) -> None:
    host, port = any_broker
    sock = socket.create_connection((host, port), timeout=5)
    try:
        sock.sendall(_connect_packet("pinger", keepalive=1))
        assert sock.recv(4)[:1] == b"\x20"
        for _ in range(4):  # 2.8 s > 1.5 x keepalive, alive thanks to the pings
            time.sleep(0.7)
            sock.sendall(b"\xc0\x00")
            assert sock.recv(2) == b"\xd0\x00"  # PINGRESP
    finally:
        sock.close()


def test_a_second_connection_with_the_same_client_id_takes_over(embedded: tuple[str, int]) -> None:
    host, port = embedded
    with clients(host, port) as make:
        old = make("same", clean=False).sub("s/t")
        new = make("same", clean=False)
        assert new.session_present is True
        make("pub").pub("s/t", b"after")
        assert new.get().payload == b"after"
        assert old.none(0.3) == []


def test_a_subscription_made_after_publishes_to_its_topic_gets_the_next_one(
    any_broker: tuple[str, int],
) -> None:
    """The embedded broker remembers each topic's subscribers; any SUBSCRIBE/UNSUBSCRIBE must reset that."""
    host, port = any_broker
    with clients(host, port) as make:
        pub = make("pub")
        pub.pub("late/t", b"before")
        sub = make("late").sub("late/+")
        pub.pub("late/t", b"after")
        assert [g.payload for g in sub.none(0.4)] == [b"after"]
        sub.unsub("late/+")
        pub.pub("late/t", b"gone")
        assert sub.none(0.4) == []
