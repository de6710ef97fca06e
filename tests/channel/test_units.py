"""Small pure pieces of the channel: token bucket, path parsing, metric labels, retry policy."""

from __future__ import annotations

import resource
import ssl

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.http11 import Response

from runtime.cloud.hub import parse_path, raise_nofile_limit
from runtime.cloud.hub_metrics import labels_of
from runtime.cloud.hub_session import TokenBucket
from runtime.edge.edgehub import Failure, classify


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
