#!/usr/bin/env python3
"""A simulated KubeEdge MQTT thermostat for the quickstart: reports a temperature, obeys a setpoint.

    demo_device.py --device default/thermostat-01 [--host 127.0.0.1] [--port 1883] [--interval 1]

Speaks KubeEdge's device topics (design.md §6) with paho-mqtt, QoS 1:
- on connect: ``$hw/events/device/<id>/state/update`` ``{"state": "online"}`` and ``…/twin/get``;
- every interval: ``…/twin/update`` with ``temperature`` (actual, moving 0.5 °C towards the setpoint)
  and ``setpoint`` (actual = the setpoint it is following), types ``float``;
- a desired setpoint arrives as ``…/twin/update/delta`` (``delta.setpoint``) or in ``…/twin/get/result``
  (``twin.setpoint.expected.value``): the device follows it.
Prints one line per report; stops on SIGTERM/SIGINT (state ``offline`` first) or after --count reports.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt


def now_ms() -> int:
    return int(time.time() * 1000)


class Thermostat:
    def __init__(self, device: str, temperature: float, setpoint: float) -> None:
        self.prefix = f"$hw/events/device/{device}"
        self.temperature, self.setpoint = temperature, setpoint
        self.lock = threading.Lock()

    def follow(self, payload: dict[str, Any]) -> None:
        """Adopt a desired setpoint from a delta or a twin/get result."""
        value = (payload.get("delta") or {}).get("setpoint")
        if value is None:
            twin = (payload.get("twin") or {}).get("setpoint") or {}
            value = (twin.get("expected") or {}).get("value")
        if value is None:
            return
        try:
            new = float(value)
        except ValueError:
            print(f"ignored setpoint {value!r}: not a number", file=sys.stderr, flush=True)
            return
        with self.lock:
            if new != self.setpoint:
                print(f"setpoint {self.setpoint:g} -> {new:g} (desired from the cloud)", flush=True)
            self.setpoint = new

    def step(self) -> dict[str, Any]:
        with self.lock:
            gap = self.setpoint - self.temperature
            self.temperature = round(self.temperature + max(-0.5, min(0.5, gap)), 1)
            ts = now_ms()
            return {
                "event_id": f"demo-{ts}",
                "timestamp": ts,
                "twin": {
                    "temperature": {
                        "actual": {"value": f"{self.temperature:g}", "metadata": {"timestamp": ts}},
                        "metadata": {"type": "float"},
                    },
                    "setpoint": {
                        "actual": {"value": f"{self.setpoint:g}", "metadata": {"timestamp": ts}},
                        "metadata": {"type": "float"},
                    },
                },
            }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", required=True, help="<namespace>/<name> of the Device")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between reports")
    ap.add_argument("--temperature", type=float, default=18.0, help="starting temperature")
    ap.add_argument("--setpoint", type=float, default=20.0, help="setpoint until the cloud's arrives")
    ap.add_argument(
        "--count", type=int, default=0, help="stop after this many reports (0: run until stopped)"
    )
    args = ap.parse_args(argv)
    dev = Thermostat(args.device, args.temperature, args.setpoint)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"demo-{args.device.replace('/', '-')}")

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            print(f"broker refused the connection: {rc}", file=sys.stderr, flush=True)
            return
        c.subscribe([(f"{dev.prefix}/twin/update/delta", 1), (f"{dev.prefix}/twin/get/result", 1)])
        c.publish(f"{dev.prefix}/state/update", json.dumps({"event_id": "", "state": "online"}), qos=1)
        c.publish(f"{dev.prefix}/twin/get", json.dumps({"event_id": f"get-{now_ms()}"}), qos=1)
        print(f"connected to {args.host}:{args.port} as device {args.device}", flush=True)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload or b"{}")
        except ValueError:
            return
        if isinstance(payload, dict):
            dev.follow(payload)

    client.on_connect = on_connect
    client.on_message = on_message
    client.reconnect_delay_set(1, 5)
    client.connect_async(args.host, args.port, keepalive=30)
    client.loop_start()
    sent = 0
    try:
        while not stop.wait(args.interval):
            if not client.is_connected():
                continue
            body = dev.step()
            client.publish(f"{dev.prefix}/twin/update", json.dumps(body), qos=1)
            sent += 1
            print(f"temperature {dev.temperature:g} setpoint {dev.setpoint:g}", flush=True)
            if args.count and sent >= args.count:
                break
    finally:
        if client.is_connected():
            client.publish(
                f"{dev.prefix}/state/update", json.dumps({"state": "offline"}), qos=1
            ).wait_for_publish(2)
        client.loop_stop()
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
