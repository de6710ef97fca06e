"""The hub with a KubeEdge-shaped peer (recorded frames, no kedge headers) and with a slow edge."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from runtime.protocol import ack, decode, encode, new_message
from runtime.protocol.message import Message
from tests.channel.conftest import Cloud
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

CAPTURE = Path(__file__).parent.parent / "unit" / "protocol" / "data" / "capture.jsonl"
PROJECT = "e632aba927ea4ac2b575ec1603d56f10"


def recorded() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


async def test_kubeedge_peer_with_recorded_frames(cloud: Cloud, tls_certs: TLSCerts) -> None:
    frames = recorded()
    node = "ke-edge-1"  # the recorded node's name
    async with connect(
        f"wss://{cloud.address}/{PROJECT}/{node}/events",
        ssl=tls_certs.client_context(tls_certs.client(node)),
        additional_headers={"node_id": node, "project_id": PROJECT},
        proxy=None,
        ping_interval=None,
    ) as ws:
        await eventually_async(lambda: cloud.hub.connected(node), what="session")
        (info,) = cloud.hub.sessions()
        assert (info.peer_kind, info.version, info.epoch) == ("kubeedge", "", "")
        up = [f for f in frames if f["dir"] == "edge->cloud"]
        for f in up:
            await ws.send(json.dumps(f["msg"]))
        keepalives = sum(f["msg"]["route"].get("operation") == "keepalive" for f in up)
        acks = sum(f["msg"]["content"] == "OK" for f in up)
        empty = sum(not f["msg"]["route"] for f in up)
        want = len(up) - keepalives - acks - empty
        await eventually_async(lambda: len(cloud.messages) == want, what=f"{want} recorded requests")
        assert cloud.metric("kedge_cloudhub_malformed_frames_total") == 0
        first = cloud.messages[0][1]
        assert first.resource == f"node/{node}/membership/detail"  # cloud-internal prefix added
        assert cloud.hub.connected(node)  # the empty goodbye frame is not an error
        # a recorded cloud->edge pod insert, delivered reliably and acked the way edgecore acks
        down = next(
            f for f in frames if f["dir"] == "cloud->edge" and f["msg"]["route"]["operation"] == "insert"
        )
        m = decode(json.dumps(down["msg"]))
        uid = m.content["metadata"]["uid"]
        await cloud.hub.send(node, m, reliable_key=uid)
        got = decode(await asyncio.wait_for(ws.recv(), 5))
        assert got == m
        await ws.send(encode(ack(got)))
        await eventually_async(lambda: cloud.acks, what="ack")
        assert cloud.acks[0][1].key == uid and cloud.acks[0][1].rv == m.resourceversion
        assert cloud.hub.pending_acks() == 0


async def test_slow_edge_never_stalls_others(
    cloud_factory: Callable[..., Any], tls_certs: TLSCerts, edge_factory: Callable[..., Any]
) -> None:
    cloud: Cloud = await cloud_factory(queue_size=2, send_timeout=1.0, keepalive_timeout=2.0)
    good = await edge_factory("quick", cloud.address)
    # max_queue=1: the client stops reading after one frame, so TCP pushes back on the hub's writer.
    slow = await connect(
        f"wss://{cloud.address}/{PROJECT}/slow/events",
        ssl=tls_certs.client_context(tls_certs.client("slow")),
        additional_headers={"node_id": "slow"},
        proxy=None,
        ping_interval=None,
        max_queue=1,
        max_size=None,
    )
    await eventually_async(
        lambda: cloud.hub.connected("slow") and cloud.hub.connected("quick"), what="sessions"
    )
    blob = base64.b64encode(os.urandom(1024 * 1024)).decode()

    async def flood_slow() -> list[bool]:
        results = []
        for i in range(40):
            big = new_message("edgecontroller", "resource", "update", f"default/secret/s{i}", {"b": blob})
            ok = await cloud.hub.send("slow", big)
            results.append(ok)
            if not ok:
                break
        return results

    task = asyncio.create_task(flood_slow())
    await eventually_async(task.done, within=10, what="the slow edge's queue full")  # send said False
    latencies = []
    for i in range(5):  # while the slow edge's queue is full, the quick one is served at once
        t0 = time.monotonic()
        msg: Message = new_message("edgecontroller", "resource", "response", f"default/configmap/c{i}", "x")
        assert await cloud.hub.send("quick", msg)
        await eventually_async(lambda i=i: len(good.received) == i + 1, within=2, what="quick edge served")
        latencies.append(time.monotonic() - t0)
    results = await asyncio.wait_for(task, 10)
    assert results[-1] is False and len(results) < 40  # backpressure reached the caller
    assert max(latencies) < 0.5, latencies
    assert cloud.metric("kedge_cloudhub_send_dropped_total") == 1
    await eventually_async(lambda: not cloud.hub.connected("slow"), within=5, what="stuck session closed")
    assert cloud.metric("kedge_cloudhub_sessions_closed_total", reason="stuck") == 1
    assert cloud.hub.connected("quick")
    slow.transport.abort()
