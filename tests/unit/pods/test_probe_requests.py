"""httpGet probes are built from pod-spec strings (issue 21): a CR/LF in the path, host or a header
must never reach the container as an injected header or a second request — the probe fails, says why
once, and sends nothing. Against a real HTTP listener on loopback that records every byte it gets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from runtime.edge.pods.probes import ProbeWorker, run_handler
from tests.fixtures.mqtt import free_port
from tests.fixtures.wait import eventually_async


class Listener:
    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.received += await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    lst = Listener()
    server = await asyncio.start_server(lst.handle, "127.0.0.1", 0)
    lst.port = server.sockets[0].getsockname()[1]
    yield lst
    server.close()
    await server.wait_closed()


async def _probe(lst: Listener, **http: Any) -> bool:
    handler = {"httpGet": {"port": lst.port, **http}}
    return await run_handler(cast(Any, None), "cid", {"name": "app"}, handler, "127.0.0.1", 2.0)


async def test_a_well_formed_probe_is_sent(listener: Listener) -> None:
    ok = await _probe(listener, path="/health z", httpHeaders=[{"name": "X-Probe", "value": "a b"}])
    assert ok and listener.connections == 1
    assert listener.received.startswith(b"GET /health%20z HTTP/1.1\r\n")
    assert b"\r\nX-Probe: a b\r\n" in listener.received


@pytest.mark.parametrize(
    "http",
    [
        {"path": "/ok HTTP/1.0\r\nX-Injected: 1\r\n\r\nGET /admin"},
        {"path": "/ok\nX-Injected: 1"},
        {"host": "127.0.0.1\r\nX-Injected: 1"},
        {"httpHeaders": [{"name": "X-A", "value": "v\r\nX-Injected: 1"}]},
        {"httpHeaders": [{"name": "X-A: v\r\nX-Injected", "value": "1"}]},
        {"httpHeaders": [{"name": "X A", "value": "1"}]},
    ],
)
async def test_cr_lf_in_path_host_or_headers_is_refused_unsent(
    listener: Listener, http: dict[str, Any]
) -> None:
    assert not await _probe(listener, **http)
    assert listener.connections == 0 and listener.received == b""


async def test_the_worker_fails_the_probe_and_says_why_once(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    probe = {
        "httpGet": {"port": listener.port, "path": "/x\r\nX-Injected: 1"},
        "periodSeconds": 0.1,
        "failureThreshold": 1,
    }
    worker = ProbeWorker(
        cast(Any, None), "cid", {"name": "app"}, "liveness", probe, "127.0.0.1", lambda: None
    )
    with caplog.at_level(logging.WARNING):
        worker.start()
        try:
            await eventually_async(lambda: not worker.result, within=5, what="the probe failed")
            await asyncio.sleep(0.3)  # a few more periods
        finally:
            worker.stop()
    assert worker.result is False and listener.connections == 0
    said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(said) == 1 and "control characters" in said[0] and "liveness probe of app" in said[0]


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (70 << 10) + b"\r\n\r\n", False),  # head over 64 KiB
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),  # not HTTP
    ],
)
async def test_the_answer_decides_within_its_byte_cap(answer: bytes, ok: bool) -> None:
    """200-399 succeed; a status outside, a response head over 64 KiB or no HTTP at all fail the probe."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        handler = {"httpGet": {"port": port, "path": "/"}}
        assert await run_handler(cast(Any, None), "cid", {"name": "app"}, handler, "127.0.0.1", 2.0) is ok
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_refused_tcp_probe_says_connection_refused_on_either_loop(loop: Any) -> None:
    """The edge runs on asyncio's own loop, which words a refused connect "Connect call failed (…)";
    the probe's message is the errno's text, as on uvloop and in kubelet's words."""
    from runtime import eventloop
    from runtime.edge.pods.probes import attempt

    port = free_port()  # nobody listens on it: a connect is refused
    handler = {"tcpSocket": {"port": port}}
    got = eventloop.run(attempt(cast(Any, None), "cid", {"name": "c"}, handler, "127.0.0.1", 2.0), loop=loop)
    assert got == f"dial tcp 127.0.0.1:{port}: Connection refused"
