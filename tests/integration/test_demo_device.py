"""scripts/demo_device.py (the quickstart's simulated thermostat) against a real mosquitto: it says it
is online, asks for its twin, reports temperature and setpoint in KubeEdge's twin/update shape, follows
a desired setpoint that arrives as a delta, and says offline when stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_device.py"
PREFIX = "$hw/events/device/default/thermo-demo"


def test_demo_device_reports_and_follows_the_desired_setpoint(mosquitto: tuple[str, int]) -> None:
    host, port = mosquitto
    seen: list[tuple[str, Any]] = []
    lock = threading.Condition()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-watcher")

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            seen.append((msg.topic, json.loads(msg.payload)))
            lock.notify_all()

    sub.on_message = on_message
    sub.connect(host, port)
    sub.subscribe(f"{PREFIX}/#", qos=1)
    sub.loop_start()

    def wait(pred: Any, what: str, timeout: float = 15.0) -> Any:
        end = time.monotonic() + timeout
        with lock:
            while True:
                found = pred()
                if found:
                    return found
                left = end - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; seen {[t for t, _ in seen]}"
                lock.wait(left)

    def updates() -> list[dict[str, Any]]:
        return [p for t, p in seen if t == f"{PREFIX}/twin/update"]

    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--device", "default/thermo-demo", "--host", host, "--port", str(port),
         "--interval", "0.1", "--temperature", "18", "--setpoint", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait(lambda: any(t == f"{PREFIX}/state/update" and p["state"] == "online" for t, p in seen), "online")
        wait(lambda: any(t == f"{PREFIX}/twin/get" for t, _ in seen), "twin/get")
        first = wait(lambda: updates(), "a twin/update")[0]
        assert set(first) == {"event_id", "timestamp", "twin"}
        temp = first["twin"]["temperature"]
        assert temp["metadata"] == {"type": "float"} and set(temp["actual"]) == {"value", "metadata"}
        assert float(temp["actual"]["value"]) == 18.5  # 0.5 towards the setpoint 20
        # the cloud's desired value arrives as the edge publishes it: a delta
        delta = {"event_id": "d", "timestamp": 1, "twin": {}, "delta": {"setpoint": "25"}}
        sub.publish(f"{PREFIX}/twin/update/delta", json.dumps(delta), qos=1).wait_for_publish(5)
        wait(lambda: any(u["twin"]["setpoint"]["actual"]["value"] == "25" for u in updates()), "setpoint 25")
        wait(
            lambda: any(u["twin"]["temperature"]["actual"]["value"] == "25" for u in updates()), "reaches 25"
        )
        # a twin/get result carrying an expected setpoint is followed too
        got = {"event_id": "g", "timestamp": 1, "twin": {"setpoint": {"expected": {"value": "19"}}}}
        sub.publish(f"{PREFIX}/twin/get/result", json.dumps(got), qos=1).wait_for_publish(5)
        wait(
            lambda: any(u["twin"]["temperature"]["actual"]["value"] == "19" for u in updates()), "back to 19"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        wait(
            lambda: any(t == f"{PREFIX}/state/update" and p["state"] == "offline" for t, p in seen), "offline"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sub.loop_stop()
        sub.disconnect()
    out = proc.stdout.read() if proc.stdout else ""
    assert "setpoint 20 -> 25 (desired from the cloud)" in out, out
