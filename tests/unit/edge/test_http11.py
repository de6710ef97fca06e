"""The edge's one HTTP/1.1 exchange (h11): framing both ways, byte caps, and what is no HTTP."""

from __future__ import annotations

import pytest

from runtime.edge.http11 import BadResponse, Exchange


def test_request_bytes_and_a_chunked_answer_in_pieces() -> None:
    ex = Exchange(body_limit=100)
    assert ex.request("/version", [("Host", "docker")]) == (
        b"GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    )
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    done = [ex.feed(answer[i : i + 7]) for i in range(0, len(answer), 7)]
    assert done[-1] and not any(done[:-1])
    assert (ex.status, ex.body) == (200, b"hello world")


def test_a_body_until_close_ends_at_eof() -> None:
    ex = Exchange()
    ex.request("/", [("Host", "x")])
    assert not ex.feed(b"HTTP/1.0 200 OK\r\n\r\n{}")
    assert ex.feed(b"") and ex.body == b"{}"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", "body over 10 bytes"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 300 + b"\r\n\r\n", "head over 256 bytes"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "bad HTTP response"),
    ],
)
def test_over_the_caps_or_no_http_is_refused(answer: bytes, why: str) -> None:
    ex = Exchange(head_limit=256, body_limit=10)
    ex.request("/", [("Host", "x")])
    with pytest.raises(BadResponse, match=why):
        ex.feed(answer)


def test_eof_before_the_answer_is_refused() -> None:
    ex = Exchange()
    ex.request("/", [("Host", "x")])
    with pytest.raises(BadResponse):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Le") or ex.feed(b"")
