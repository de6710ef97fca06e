"""Scenario 5 (embedded broker): the broker's keepalive task crashed by injection — a poisoned entry
in its connection set makes the next sweep raise. The plane notices, says so once, restarts the
broker on the same port; devices reconnect and twin traffic resumes, and every value the edge
answered before the crash is in the twin store (sqlite, read back after the plane stopped).

Before: the keepalive task died silently; the broker went on without keepalive checks, and nothing
said so."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from runtime.config import MqttSection
from tests.devices.conftest import start_plane
from tests.devices.mqttclient import MODEL, clients, device, twin_update
from tests.fixtures.mqtt import free_port
from tests.fixtures.wait import eventually

DEV = "$hw/events/device/default/thermostat-01"


class Poison:
    """Not a connection: reading its keepalive raises, as a bug in the sweep would."""

    @property
    def keepalive(self) -> int:
        raise RuntimeError("injected fault in the broker's keepalive task")


def stored_temperature(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT data FROM twins WHERE device='default/thermostat-01' AND prop='temperature'"
        ).fetchone()
    finally:
        conn.close()
    twin: dict[str, Any] = json.loads(row[0])
    return str(twin["actual"]["value"])


def answered(make: Any, values: list[str], tag: str) -> list[str]:
    """A device reports `values` one by one; the ones the edge answered on the result topic."""
    dev = make(f"thermostat-01-{tag}").sub(f"{DEV}/twin/update/result")
    out = []
    for i, v in enumerate(values):
        dev.pub(f"{DEV}/twin/update", twin_update(f"{tag}-{i}", temperature=v))
        got = dev.get(topic=f"{DEV}/twin/update/result").json()
        if got["twin"]["temperature"]["actual"]["value"] == v:
            out.append(v)
    return out


def test_a_crashed_embedded_broker_is_restarted_and_no_answered_value_is_lost(tmp_path: Path) -> None:
    port = free_port()
    cfg = MqttSection(port=port, report_window_seconds=0.2)
    db = tmp_path / "cache.db"
    handle, finish = start_plane(db, {"device": [device()], "devicemodel": [MODEL]}, cfg)
    stopped = False
    try:
        plane = handle.plane
        first = plane.broker
        assert first is not None
        with clients("127.0.0.1", port) as make:
            before = answered(make, ["20.1", "20.2", "20.3"], "a")
        handle.lt.loop.call_soon_threadsafe(first._conns.add, Poison())  # type: ignore[arg-type]
        t0 = time.monotonic()
        eventually(lambda: plane.crashes == 1 and plane.broker not in (None, first), 15, "a new broker")
        restarted = time.monotonic() - t0
        assert "restarting it" in str(handle.status()["trouble"]), handle.status()["trouble"]
        with clients("127.0.0.1", port) as make:  # traffic resumes on the same port
            after = answered(make, ["20.4", "20.5"], "b")
        assert handle.status()["broker"]["restarts"] == 1
        finish()
        stopped = True
        figures = {
            "scenario": "embedded-broker-task-crash",
            "answered": len(before) + len(after),
            "lost_twin_values": 0 if stored_temperature(db) == "20.5" else 1,
            "broker_back_seconds": round(restarted, 1),
        }
        print(json.dumps(figures, sort_keys=True), flush=True)
        assert before == ["20.1", "20.2", "20.3"] and after == ["20.4", "20.5"], (before, after)
        assert figures["lost_twin_values"] == 0, figures
    finally:
        if not stopped:
            finish()
