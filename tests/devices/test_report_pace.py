"""A storm of device updates against the real CloudHub (its 30/s per-node limit) through `kedge edge
run`'s embedded broker: the uplink paces itself (``mqtt.report_qps``) and folds later values into
the report still waiting, so the backlog stays at one report per device and property and the cloud
has every device's last value within one round of the devices at the pace — not after a drain that
grows with the storm's length. Nothing is lost: per device, the values arrive in order and the counts
of the folded values add up to every update the device made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from runtime.edge.devices.uplink import fit
from runtime.edge.run import EdgeRuntime
from runtime.pace import TokenBucket
from runtime.protocol import Message, new_message
from tests.devices.mqttclient import MODEL, device, twin_update
from tests.fixtures.edge import RecordedCloud, make_edge_root, running
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

N, QPS, WINDOW = 30, 10.0, 0.2  # devices, the uplink's pace, the coalescing window
UPDATES = 3000  # 100 per device, as fast as the client goes (≥ 5 windows per device and second)
SLACK = 10.0  # a loaded 2-core machine; the old uplink needed ~25 s here (750 windows at 30/s)


def test_fit_counts_messages_as_build_groups_them() -> None:
    rows = [("d1", "t"), ("d2", "t"), ("d1", "s"), ("d3", ""), ("d1", "t"), ("d4", "t")]
    # d1 {t, s}, d2 {t}, state of d3, d1 again (t repeats), d4: 5 messages
    assert [fit(b)(rows) for b in (0, 1, 2, 3, 4, 5, 9)] == [0, 1, 3, 4, 5, 6, 6]


def test_token_bucket_available_and_until_one() -> None:
    b = TokenBucket(rate=10.0, burst=5)
    assert b.available(0.0) == 5
    for _ in range(5):
        assert b.take(0.0) == 0.0
    assert b.available(0.0) == 0 and b.until_one(0.0) == pytest.approx(0.1)
    assert b.available(0.25) == 2  # refilled at the rate
    assert b.available(100.0) == 5  # capped at the burst


def _value(k: int) -> str:
    return f"{1 + k / 10000:.4f}"  # unique per update, inside the model's -40..100


def _storm(port: int) -> dict[str, list[str]]:
    """UPDATES twin/update round-robin over the N devices from one client; the values sent per device."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="storm", protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    sent: dict[str, list[str]] = {}
    try:
        infos = []
        for k in range(UPDATES):
            name = f"dev-{k % N:02d}"
            sent.setdefault(name, []).append(_value(k))
            topic = f"$hw/events/device/default/{name}/twin/update"
            infos.append(c.publish(topic, twin_update(f"s-{k}", temperature=_value(k)), qos=1))
            if k % 200 == 199:
                time.sleep(0.05)  # the thing under test: a storm paced in bursts of 200
        for info in infos:
            info.wait_for_publish(30)
    finally:
        c.loop_stop()
        c.disconnect()
    return sent


def _reports(cloud: RecordedCloud) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in cloud.ctl.requests:
        if m.resource.endswith("/twin/edge_updated"):
            out.setdefault(m.resource.split("/")[2], []).append(m)
    return out


async def test_a_storm_reaches_the_cloud_within_one_round_of_the_devices_at_the_pace(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    cfg = make_edge_root(tmp_path, tls_certs, "n1", recorded_cloud.server)
    cfg.mqtt.port, cfg.mqtt.report_window_seconds = 0, WINDOW
    cfg.mqtt.report_qps, cfg.mqtt.report_burst = QPS, int(QPS)
    hub = recorded_cloud.hub
    async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
        await eventually_async(lambda: hub.connected("n1"), 15, "edge session")
        model = new_message("devicecontroller", "resource", "insert", "default/devicemodel/thermostat-model",
                            MODEL, resourceversion="7")  # fmt: skip
        await hub.send("n1", model)
        ids = []
        for i in range(N):
            name = f"dev-{i:02d}"
            dev = device(name=name, desired=None, rv=str(10 + i))
            res = f"default/device/{name}"
            await hub.send(
                "n1",
                new_message(
                    "devicecontroller",
                    "resource",
                    "insert",
                    res,
                    dev,
                    resourceversion=dev["metadata"]["resourceVersion"],
                ),
            )
            ids.append({"id": f"default/{name}", "name": name})
        added = {"event_id": "m", "timestamp": 1, "added_devices": ids, "removed_devices": None}
        await hub.send("n1", new_message("devicecontroller", "twin", "update", "membership", added))
        assert rt.devices is not None and rt.devices.broker is not None and rt.devices.bridge is not None
        bridge = rt.devices.bridge
        await eventually_async(lambda: len(bridge.specs) == N, 15, "the devices at the edge")
        port = rt.devices.broker.addresses[0][1]

        pending: list[int] = []
        storm = asyncio.ensure_future(asyncio.to_thread(_storm, port))
        while not storm.done():  # the edge's backlog during the storm
            pending.append((await rt.status())["devices"]["reports"]["pendingReports"])
            await asyncio.sleep(0.1)  # the thing under test: the backlog sampled while the storm runs
        sent = await storm
        await eventually_async(lambda: bridge.counts["updates"] >= UPDATES, 30, "every update answered")
        ended = time.monotonic()

        def arrived() -> bool:
            got = _reports(recorded_cloud)
            return all(
                n in got and got[n][-1].content["twin"]["temperature"]["actual"]["value"] == v[-1]
                for n, v in sent.items()
            )

        bound = N / QPS + WINDOW + SLACK
        await eventually_async(arrived, bound, f"every device's last value at the cloud within {bound:.1f} s")
        took = time.monotonic() - ended
        await asyncio.sleep(2 * WINDOW)  # the thing under test: two coalescing windows pass, nothing waits
        assert (await rt.status())["devices"]["reports"]["pendingReports"] == 0

    # one report waiting per device (+ the batch in flight), whatever the storm's length
    assert max(pending) <= N + QPS, pending
    for name, values in sent.items():
        msgs = _reports(recorded_cloud)[name]
        got = [m.content["twin"]["temperature"] for m in msgs]
        positions = [values.index(t["actual"]["value"]) for t in got]
        assert positions == sorted(set(positions)), f"{name}: out of order or repeated"
        assert sum(1 + t.get("coalesced", 0) for t in got) == len(values), f"{name}: a count was lost"
    assert len(recorded_cloud.ctl.requests) < UPDATES / 2, "values were folded, not sent one by one"
    print(f"storm: {UPDATES} updates, {N} devices, pace {QPS}/s: last values at the cloud {took:.1f} s after")
