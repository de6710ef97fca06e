"""A real MQTT client for tests (paho-mqtt on its own thread) and the device objects tests use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

LINE_BUFFERED = [
    "stdbuf",
    "-oL",
]  # before `mosquitto_sub -d`, so its SUBACK line comes through a pipe at once


def subscribed(proc: subprocess.Popen[bytes]) -> list[bytes]:
    """Read a `LINE_BUFFERED mosquitto_sub -d`'s stdout until its SUBACK (the subscription is in)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if b"SUBACK" in line:
            return lines
    raise AssertionError(f"mosquitto_sub exited with {proc.wait()} before its SUBACK: {lines}")


MODEL: dict[str, Any] = {
    "apiVersion": "devices.kubeedge.io/v1beta1",
    "kind": "DeviceModel",
    "metadata": {"name": "thermostat-model", "namespace": "default", "uid": "m-1", "resourceVersion": "7"},
    "spec": {
        "protocol": "modbus",
        "properties": [
            {
                "name": "temperature",
                "type": "FLOAT",
                "accessMode": "ReadOnly",
                "minimum": "-40",
                "maximum": "100",
            },
            {"name": "setpoint", "type": "FLOAT", "accessMode": "ReadWrite"},
            {"name": "count", "type": "INT"},
            {"name": "enabled", "type": "BOOLEAN"},
        ],
    },
}


def device(
    name: str = "thermostat-01", node: str = "n1", desired: str | None = "21.5", rv: str = "8"
) -> dict[str, Any]:
    props: list[dict[str, Any]] = [{"name": "temperature", "reportToCloud": True}]
    if desired is not None:
        props.append({"name": "setpoint", "desired": {"value": desired}})
    return {
        "apiVersion": "devices.kubeedge.io/v1beta1",
        "kind": "Device",
        "metadata": {"name": name, "namespace": "default", "uid": f"d-{name}", "resourceVersion": rv},
        "spec": {
            "deviceModelRef": {"name": "thermostat-model"},
            "nodeName": node,
            "protocol": {"protocolName": "modbus"},
            "properties": props,
        },
    }


def twin_update(event_id: str, **values: Any) -> bytes:
    twin = {
        k: {"actual": {"value": v, "metadata": {"timestamp": 1}}, "metadata": {"type": "float"}}
        for k, v in values.items()
    }
    return json.dumps({"event_id": event_id, "timestamp": 1, "twin": twin}).encode()


@dataclass
class Got:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Client:
    """``sub``/``pub`` wait for SUBACK/PUBACK; ``get`` waits for the next message (blocking: call it
    through ``asyncio.to_thread`` from async tests)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "",
        *,
        clean: bool = True,
        manual_ack: bool = False,
        keepalive: int = 60,
        username: str | None = None,
        password: str | None = None,
        tls: tuple[str, str, str] | None = None,  # (CA, client certificate, key) files
    ) -> None:
        self.q: queue.Queue[Got] = queue.Queue()
        self.c = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=paho.MQTTv311
        )
        if manual_ack:
            self.c.manual_ack_set(True)
        if username:
            self.c.username_pw_set(username, password)
        if tls:
            self.c.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        self._subbed, self._unsubbed = threading.Event(), threading.Event()
        self._up = threading.Event()
        self.session_present: bool | None = None
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.q.put(
            Got(m.topic, bytes(m.payload), m.qos, m.retain, bool(m.dup))
        )
        self.c.on_subscribe = lambda *a: self._subbed.set()
        self.c.on_unsubscribe = lambda *a: self._unsubbed.set()
        self.c.connect(host, port, keepalive=keepalive)
        self.c.loop_start()
        if not self._up.wait(5):
            raise AssertionError(f"MQTT client {client_id!r} did not connect to {host}:{port}")

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self.session_present = bool(flags.session_present)
        self._up.set()

    def sub(self, *topics: str, qos: int = 1) -> Client:
        self._subbed.clear()
        self.c.subscribe([(t, qos) for t in topics])
        assert self._subbed.wait(5), f"no SUBACK for {topics}"
        return self

    def unsub(self, *topics: str) -> Client:
        self._unsubbed.clear()
        self.c.unsubscribe(list(topics))
        assert self._unsubbed.wait(5), f"no UNSUBACK for {topics}"
        return self

    def pub(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)

    def get(self, timeout: float = 5.0, topic: str | Callable[[str], bool] | None = None) -> Got:
        """The next message (on ``topic`` when given; others are skipped)."""
        end = threading.Event()
        timer = threading.Timer(timeout, end.set)
        timer.start()
        try:
            while not end.is_set():
                try:
                    got = self.q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if topic is None or (got.topic == topic if isinstance(topic, str) else topic(got.topic)):
                    return got
        finally:
            timer.cancel()
        raise AssertionError(
            f"no message{f' on {topic}' if isinstance(topic, str) else ''} within {timeout}s"
        )

    def none(self, within: float = 0.5) -> list[Got]:
        """Everything that arrives within ``within`` seconds (tests assert it is empty or not)."""
        out: list[Got] = []
        with contextlib.suppress(AssertionError):
            while True:
                out.append(self.get(within))
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@contextlib.contextmanager
def clients(host: str, port: int) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(client_id: str = "", **kw: Any) -> Client:
        c = Client(host, port, client_id, **kw)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            with contextlib.suppress(Exception):
                c.close()


async def aget(client: Client, topic: str | None = None, within: float = 5.0) -> Got:
    return await asyncio.to_thread(client.get, within, topic)


async def apub(client: Client, topic: str, payload: bytes | str, qos: int = 1) -> None:
    await asyncio.to_thread(client.pub, topic, payload, qos)
