"""Small pure pieces of the channel: token bucket, path parsing, metric labels, retry policy."""

from __future__ import annotations

import resource
import ssl
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.http11 import Response

from runtime import __version__
from runtime.cloud.hub.handshake import parse_path, raise_nofile_limit
from runtime.cloud.hub.metrics import labels_of
from runtime.cloud.hub.server import CloudHub
from runtime.config import CloudConfig, EdgeConfig
from runtime.edge.edgehub import EdgeHub, Failure, classify
from runtime.pace import TokenBucket
from runtime.protocol.message import Message
from tests.fixtures.tlscerts import TLSCerts


def test_token_bucket_burst_then_rate() -> None:
    b = TokenBucket(rate=30.0, burst=60)
    assert [b.take(0.0) for _ in range(60)] == [0.0] * 60  # the burst is free
    assert b.take(0.0) == pytest.approx(1 / 30)  # then one token every 1/30 s
    assert b.take(0.0) == pytest.approx(2 / 30)
    assert b.take(10.0) == 0.0  # refilled (capped at the burst)
    waits = [b.take(10.0) for _ in range(70)]
    assert sum(w == 0.0 for w in waits) == 59
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_parse_path() -> None:
    assert parse_path("/e632/edge-1/events") == ("e632", "edge-1")
    assert parse_path("/e632/edge-1/events?x=1") == ("e632", "edge-1")
    for bad in ("/", "/e632/edge-1", "/e632/edge-1/other", "//edge-1/events", "/a/b/c/events"):
        assert parse_path(bad) is None, bad


def test_metric_labels_are_bounded() -> None:
    assert labels_of("insert", "default/pod/web") == ("insert", "pod")
    assert labels_of("keepalive", "node") == ("keepalive", "node")
    assert labels_of("get", "membership/detail") == ("get", "membership")
    assert labels_of("x" * 50, "default/" + "y" * 50 + "/z") == ("other", "other")


def test_nofile_limit_raised() -> None:
    soft = raise_nofile_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft >= 1024


def _status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers()))


def test_retry_policy() -> None:
    assert classify(ConnectionRefusedError()) is Failure.RETRY
    assert classify(TimeoutError()) is Failure.RETRY
    assert classify(_status(503)) is Failure.RETRY
    assert classify(_status(403)) is Failure.AUTH
    assert classify(_status(401)) is Failure.AUTH
    assert classify(ssl.SSLCertVerificationError("certificate verify failed")) is Failure.AUTH
    wrapped = InvalidMessage("did not receive a valid HTTP response")
    wrapped.__cause__ = EOFError("connection closed while reading HTTP status line")
    assert classify(wrapped) is Failure.AUTH  # TLS 1.3: a refused client certificate looks like this
    other = InvalidMessage("did not receive a valid HTTP response")
    other.__cause__ = ValueError("bad status line")
    assert classify(other) is Failure.RETRY
    assert classify(InvalidURI("x", "bad")) is Failure.FATAL


async def test_from_config(tmp_path: Path, tls_certs: TLSCerts) -> None:
    async def on_cloud(node: str, msg: Message) -> None: ...
    async def on_edge(msg: Message) -> None: ...

    c = CloudConfig()
    c.hub.keepalive_timeout_seconds = 12.0
    hub = CloudHub.from_config(c.hub, ssl_context=tls_certs.server_context(), on_message=on_cloud, port=0)
    assert (hub.host, hub.port, hub.keepalive_timeout, hub.rate, hub.burst, hub.resend_after) == (
        "0.0.0.0",
        0,
        12.0,
        30.0,
        60,
        5.0,
    )
    e = EdgeConfig()
    e.hub.server = "127.0.0.1:10000"
    edge = EdgeHub.from_config(
        e.hub,
        "n1",
        on_message=on_edge,
        outbox_path=tmp_path / "o.db",
        ssl_context=tls_certs.client_context(tls_certs.client("n1")),
        epoch="ep",
    )
    assert edge.url == f"wss://127.0.0.1:10000/{e.hub.project_id}/n1/events"
    assert edge.heartbeat == 15.0 and edge.dead_after == 30.0
    assert edge.headers() == {
        "node_id": "n1",
        "project_id": e.hub.project_id,
        "ConnectionUse": "msg",
        "X-Kedge-Version": __version__,
        "X-Kedge-Cache-Epoch": "ep",
    }
