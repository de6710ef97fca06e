"""Both real ends of the channel — CloudHub and EdgeHub over real mTLS websockets — doing their job:
keepalive, silence, replacement, reliable delivery, offline queue, big frames, bad frames, floods,
partitions."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from runtime.logs import LogOnce
from runtime.protocol import encode, keepalive, new_message
from runtime.protocol.message import Message
from tests.channel.conftest import Cloud
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"


def pod(name: str, rv: str = "1", body: dict[str, Any] | None = None) -> Message:
    content = body or {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}}
    return new_message(
        "edgecontroller", "resource", "insert", f"default/pod/{name}", content, resourceversion=rv
    )


def status(i: int) -> Message:
    return new_message("edged", "meta", "patch", f"default/podpatch/p{i}", f'{{"i":{i}}}')


async def raw(cloud: Cloud, tls_certs: TLSCerts, node: str) -> ClientConnection:
    return await connect(
        f"wss://{cloud.address}/{PROJECT}/{node}/events",
        ssl=tls_certs.client_context(tls_certs.client(node)),
        additional_headers={"node_id": node},
        proxy=None,
        ping_interval=None,
    )


async def test_keepalive_keeps_session_and_silence_drops_it(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any], tls_certs: TLSCerts
) -> None:
    cloud: Cloud = await cloud_factory(keepalive_timeout=1.0)
    edge = await edge_factory("alive", cloud.address, heartbeat=0.2)
    silent = await raw(cloud, tls_certs, "silent")
    await eventually_async(lambda: len(cloud.hub.sessions()) == 2, what="two sessions")
    await eventually_async(lambda: cloud.disconnects, within=5, what="the silent session dropped")
    # by now the alive session has also been open longer than the keepalive timeout
    assert [s.node for s in cloud.hub.sessions()] == ["alive"]  # silent one dropped, alive kept
    assert cloud.hub.sessions()[0].last_keepalive is not None
    assert silent.close_code == 4001
    assert cloud.metric("kedge_cloudhub_sessions_closed_total", reason="silent") == 1
    assert [d.node for d in cloud.disconnects] == ["silent"]
    assert edge.hub.status()["reconnects"] == 0
    assert all(m.operation != "keepalive" for _, m in cloud.messages)  # keepalives stay in the hub


async def test_new_session_replaces_old(
    cloud: Cloud, tls_certs: TLSCerts, edge_factory: Callable[..., Any]
) -> None:
    old = await raw(cloud, tls_certs, "twin")
    await eventually_async(lambda: cloud.hub.connected("twin"), what="first session")
    edge = await edge_factory("twin", cloud.address)
    await eventually_async(lambda: old.close_code is not None, what="old session closed")
    assert old.close_code == 4000
    await eventually_async(lambda: edge.hub.status()["connected"], what="new session")
    assert len(cloud.hub.sessions()) == 1 and len(cloud.connects) == 2
    assert cloud.disconnects == []  # a replacement is not a disconnect
    # the new session works: a message reaches the cloud
    await edge.hub.send(status(1))
    await eventually_async(lambda: cloud.of("twin"), what="message over new session")


async def test_reliable_insert_is_acked(cloud: Cloud, edge_factory: Callable[..., Any]) -> None:
    edge = await edge_factory("e1", cloud.address)
    other = await edge_factory("e2", cloud.address)
    await eventually_async(lambda: cloud.hub.connected("e1") and cloud.hub.connected("e2"), what="sessions")
    m = pod("web", rv="42")
    assert await cloud.hub.send("e1", m, reliable_key="uid-web")
    await eventually_async(lambda: cloud.acks, what="ack")
    node, ev = cloud.acks[0]
    assert (node, ev.key, ev.rv, ev.operation) == ("e1", "uid-web", "42", "insert")
    assert cloud.hub.pending_acks() == 0
    assert [x.msg_id for x in edge.received] == [m.msg_id]
    assert other.received == []  # only the owning node gets it
    assert cloud.metric("kedge_cloudhub_messages_sent_total", operation="insert", type="pod") == 1


async def test_unacked_message_is_resent_until_acked(cloud: Cloud, edge_factory: Callable[..., Any]) -> None:
    edge = await edge_factory("lazy", cloud.address, auto_ack=False)
    await eventually_async(lambda: cloud.hub.connected("lazy"), what="session")
    m = pod("web")
    await cloud.hub.send("lazy", m, reliable_key="uid-web")
    await eventually_async(lambda: len(edge.received) >= 3, within=3, what="two resends (every 0.3 s)")
    assert {x.msg_id for x in edge.received} == {m.msg_id}  # the same message, resent
    assert cloud.hub.pending_acks("lazy") == 1
    assert cloud.metric("kedge_cloudhub_resends_total") >= 2
    assert cloud.metric("kedge_cloudhub_acks_pending") == 1
    await edge.hub.ack(edge.received[0])
    await eventually_async(lambda: cloud.hub.pending_acks() == 0, what="acked")
    n = len(edge.received)
    await asyncio.sleep(0.8)  # the thing under test: more than two resend periods pass with nothing
    assert len(edge.received) == n  # no more resends


async def test_pending_survives_disconnect_and_goes_out_on_reconnect(
    cloud: Cloud, edge_factory: Callable[..., Any]
) -> None:
    assert await cloud.hub.send("later", pod("a"), reliable_key="ua")  # node never connected yet
    assert not await cloud.hub.send("later", status(0))  # unreliable to an offline node: refused
    edge = await edge_factory("later", cloud.address)
    await eventually_async(lambda: cloud.acks, what="delivered on connect")
    assert [m.resource for m in edge.received] == ["default/pod/a"]


async def test_offline_queue_delivered_in_order_after_reconnect(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any]
) -> None:
    first: Cloud = await cloud_factory()
    port = first.hub.bound_port
    await first.hub.stop()
    edge = await edge_factory("off", f"127.0.0.1:{port}")
    await eventually_async(lambda: edge.hub.status()["last_error"], what="edge fails to connect")
    for i in range(5):
        await edge.hub.send(status(i))
    assert edge.hub.status()["outbox"] == 5
    cloud: Cloud = await cloud_factory(port=port)
    await eventually_async(lambda: edge.hub.status()["connected"], within=5, what="reconnect")
    await edge.hub.send(status(5))
    await eventually_async(lambda: len(cloud.of("off")) == 6, what="all six")
    assert [m.content for m in cloud.of("off")] == [f'{{"i":{i}}}' for i in range(6)]
    assert cloud.of("off")[0].resource == "node/off/default/podpatch/p0"  # cloud-internal prefix
    assert edge.hub.status()["outbox"] == 0


async def test_request_response_and_ack(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any]
) -> None:
    holder: list[Cloud] = []

    async def answer(node: str, msg: Message) -> None:
        holder[0].messages.append((node, msg))
        if msg.operation == "query":
            reply = new_message(
                "edgecontroller",
                "resource",
                "response",
                msg.resource,
                {"kind": "ConfigMap"},
                parent_msg_id=msg.msg_id,
            )
            await holder[0].hub.send(node, reply)

    cloud: Cloud = await cloud_factory(on_message=answer)
    holder.append(cloud)
    edge = await edge_factory("asker", cloud.address)
    await eventually_async(lambda: edge.hub.status()["connected"], what="connected")
    q = new_message("edged", "meta", "query", "default/configmap/cm")
    resp = await edge.hub.request(q, timeout=5)
    assert resp.parent_msg_id == q.msg_id and resp.content == {"kind": "ConfigMap"}
    assert resp.resource == "default/configmap/cm"  # prefix stripped on the way down
    # the edge acks the response with "OK", as edgecore does; the hub swallows such acks
    await eventually_async(
        lambda: (
            cloud.metric("kedge_cloudhub_messages_received_total", operation="response", type="configmap")
            == 1
        ),
        what="ack of response",
    )
    assert [m.operation for m in cloud.of("asker")] == ["query"]


async def test_secret_of_one_mib_crosses_both_ways(cloud: Cloud, edge_factory: Callable[..., Any]) -> None:
    edge = await edge_factory("big", cloud.address)
    await eventually_async(lambda: edge.hub.status()["connected"], what="connected")
    data = base64.b64encode(os.urandom(1024 * 1024)).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default", "uid": "us"},
        "data": {"blob": data},
    }
    down = new_message(
        "edgecontroller", "resource", "insert", "default/secret/s", secret, resourceversion="9"
    )
    assert len(encode(down)) > 1_390_000  # 1 MiB of data is ~1.4 MB as JSON: above websockets' 1 MiB default
    await cloud.hub.send("big", down, reliable_key="us")
    await eventually_async(lambda: cloud.acks, what="secret acked")
    assert edge.received[0].content["data"]["blob"] == data
    up = new_message("edged", "meta", "update", "default/secret/s", secret)
    await edge.hub.send(up)
    await eventually_async(lambda: cloud.of("big"), what="secret up")
    assert cloud.of("big")[0].content["data"]["blob"] == data


async def test_malformed_frames_close_that_session_only(
    cloud: Cloud, tls_certs: TLSCerts, edge_factory: Callable[..., Any]
) -> None:
    good = await edge_factory("good", cloud.address)
    bad = await raw(cloud, tls_certs, "bad")
    await eventually_async(
        lambda: cloud.hub.connected("bad") and cloud.hub.connected("good"), what="sessions"
    )
    await bad.send("not json")
    await bad.send(encode(keepalive()))  # a good frame resets the count
    for frame in ("{", '{"header": 1}', "[]"):
        await bad.send(frame)
    await eventually_async(lambda: bad.close_code is not None, what="bad session closed")
    assert bad.close_code == 1008
    assert cloud.metric("kedge_cloudhub_malformed_frames_total") == 4
    assert not cloud.hub.connected("bad")
    await good.hub.send(status(1))  # the server keeps serving others
    await eventually_async(lambda: cloud.of("good"), what="good edge still served")
    assert cloud.hub.connected("good")


async def test_flood_is_throttled(cloud_factory: Callable[..., Any], tls_certs: TLSCerts) -> None:
    cloud: Cloud = await cloud_factory(rate=100.0, burst=20)
    ws = await raw(cloud, tls_certs, "flood")
    await eventually_async(lambda: cloud.hub.connected("flood"), what="session")
    t0 = time.monotonic()
    for i in range(220):
        await ws.send(encode(status(i)))
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))  # under test: what one second lets through
    at_one_second = len(cloud.of("flood"))
    assert at_one_second <= 20 + 100 + 15, at_one_second  # burst + 1 s of rate (+ slack)
    await eventually_async(
        lambda: len(cloud.of("flood")) == 220, within=5, what="all delivered, none dropped"
    )
    assert time.monotonic() - t0 >= 1.9  # 200 beyond the burst at 100/s
    assert cloud.metric("kedge_cloudhub_throttled_messages_total") >= 150
    await ws.close()


async def test_partition_then_reconnect_with_backoff(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any], tcp_proxy: list[TcpProxy]
) -> None:
    cloud: Cloud = await cloud_factory(keepalive_timeout=1.0)
    proxy = await TcpProxy("127.0.0.1", cloud.hub.bound_port).start()
    tcp_proxy.append(proxy)
    edge = await edge_factory(
        "cut", proxy.address, heartbeat=0.2, dead_after=0.6, connect_timeout=0.5, reconnect_cap=1.0
    )
    await eventually_async(lambda: edge.hub.status()["connected"], what="connected through proxy")
    proxy.cut()
    await eventually_async(
        lambda: not cloud.hub.connected("cut"), within=3, what="cloud drops the silent session"
    )
    await eventually_async(lambda: not edge.hub.status()["connected"], within=3, what="edge notices")
    await eventually_async(lambda: edge.hub.status()["backoff"], within=3, what="edge backing off")
    await edge.hub.send(status(7))  # queued durably while cut
    assert edge.hub.status()["outbox"] == 1
    await asyncio.sleep(1.0)  # under test: a second of retries through the cut link connects nothing
    assert not edge.hub.status()["connected"]
    proxy.restore()
    await eventually_async(lambda: edge.hub.status()["connected"], within=5, what="reconnected after restore")
    await eventually_async(lambda: cloud.of("cut"), what="queued message delivered")
    st = edge.hub.status()
    assert st["reconnects"] == 1 and st["backoff"] is None
    assert cloud.hub.connected("cut")
    assert [d.node for d in cloud.disconnects] == ["cut"]


async def test_idle_traffic_per_edge(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any], tcp_proxy: list[TcpProxy]
) -> None:
    """Bytes on the wire (TLS included) of an idle kedge edge: one keepalive per heartbeat plus a
    websocket ping/pong every two. Measured at a fast cadence and scaled to the default 15 s."""
    cloud: Cloud = await cloud_factory()
    proxy = await TcpProxy("127.0.0.1", cloud.hub.bound_port).start()
    tcp_proxy.append(proxy)
    heartbeat = 0.25
    edge = await edge_factory("idle", proxy.address, heartbeat=heartbeat)
    await edge.hub.wait_connected(5)
    await eventually_async(  # the first keepalive arrived: the handshake's bytes are behind us
        lambda: cloud.hub.sessions() and cloud.hub.sessions()[0].last_keepalive, what="a first keepalive"
    )
    up0, down0, t0 = proxy.bytes_up, proxy.bytes_down, time.monotonic()
    await asyncio.sleep(4.0)  # the measurement window
    elapsed = time.monotonic() - t0
    per_beat = (proxy.bytes_up - up0 + proxy.bytes_down - down0) / (elapsed / heartbeat)
    kbit_s_at_default = per_beat * 8 / 15.0 / 1000
    print(f"idle: {per_beat:.0f} bytes per heartbeat -> {kbit_s_at_default:.3f} kbit/s at 15 s")
    assert 150 < per_beat < 400, per_beat  # a recorded keepalive is ~196 bytes of JSON
    assert kbit_s_at_default <= 0.25  # design target for kedge-to-kedge idle edges
    assert cloud.hub.connected("idle")


async def test_delivery_state_is_bounded_and_dropped_when_it_holds_nothing(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any]
) -> None:
    cloud: Cloud = await cloud_factory(resend_after=0.3, keepalive_timeout=2.0, max_pending=3)
    for i in range(5):  # a node that never connects: only the newest three are kept
        assert await cloud.hub.send("never", pod(f"p{i}"), reliable_key=f"u{i}")
    assert [k for k, _ in cloud.hub.downlink("never").pending()] == ["u2", "u3", "u4"]
    assert cloud.metric("kedge_cloudhub_send_dropped_total") == 2
    cloud.hub.forget("never")
    assert cloud.hub.pending_acks("never") == 0 and "never" not in cloud.hub.tracked()
    edge = await edge_factory("brief", cloud.address)
    await eventually_async(lambda: cloud.hub.connected("brief"), what="session")
    await cloud.hub.send("brief", pod("a"), reliable_key="ua")
    await eventually_async(lambda: cloud.hub.pending_acks("brief") == 0, what="acked")
    assert "brief" in cloud.hub.tracked()  # connected: kept
    edge.stop.set()
    await eventually_async(lambda: "brief" not in cloud.hub.tracked(), what="offline and empty: dropped")


def _tracebacks(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and text in r.getMessage()]


async def test_a_failing_handler_logs_its_traceback_once_then_counts(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Message] = []

    async def broken(node: str, msg: Message) -> None:
        calls.append(msg)
        raise RuntimeError("handler bug")

    cloud: Cloud = await cloud_factory(on_message=broken)
    edge = await edge_factory("noisy", cloud.address)
    await eventually_async(lambda: cloud.hub.connected("noisy"), what="session")

    down: list[Message] = []

    class Exploding(list[Message]):
        def append(self, msg: Message) -> None:
            down.append(msg)
            raise RuntimeError("edge handler bug")

    edge.received = Exploding()
    with caplog.at_level(logging.WARNING):
        for i in range(20):
            await edge.hub.send(status(i))
            await cloud.hub.send("noisy", pod(f"p{i}"), reliable_key=f"u{i}")
        await eventually_async(lambda: len(calls) == 20, what="every upstream message handled")
        await eventually_async(lambda: len(down) >= 20, what="every downstream message handled")
    assert len(_tracebacks(caplog, "handler failed for patch")) == 1  # cloud side: once, not 20 times
    assert len(_tracebacks(caplog, "edgehub handler failed for insert")) == 1  # edge side, likewise


def test_log_once_says_it_again_after_its_period_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    once = LogOnce(every=60.0, logger=logging.getLogger("kedge.test"))
    with caplog.at_level(logging.WARNING):
        for t in (0.0, 1.0, 2.0, 61.0):
            try:
                raise ValueError("boom")
            except ValueError:
                once.exception("k", "it failed", now=t)
    said = [r.getMessage() for r in caplog.records if r.name == "kedge.test"]
    assert len(said) == 2 and "(2 similar suppressed)" in said[1]
    assert all(r.exc_info for r in caplog.records if r.name == "kedge.test")
