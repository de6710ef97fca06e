"""A peer's bad requests cannot fill the log: aiohttp's traceback per malformed request (here a header
over its 8190-byte limit, answered 400) is said once per kind, then counted (design.md §3)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from runtime import logs


async def oversized_header_request(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    await writer.drain()
    answer = await reader.read(100)
    writer.close()
    return answer


async def test_malformed_requests_are_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    logs.setup()
    server_logger = logging.getLogger("aiohttp.server")
    once = next(f for f in server_logger.filters if isinstance(f, logs.OncePerKind))
    once.once = logs.LogOnce(every=60.0)  # a fresh period for this test
    app = web.Application()
    app.router.add_get("/", lambda _: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
            answers = [await oversized_header_request(port) for _ in range(5)]
    finally:
        await runner.cleanup()
    assert all(a.split(b" ")[1] == b"400" for a in answers), answers
    errors = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(errors) == 1 and errors[0].exc_info, [r.getMessage() for r in errors]
    assert sum(once.once.suppressed.values()) == 4
    # once the period is over, the next one says how many were left out
    once.once.every = 0.0
    record = logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), None
    )
    record.exc_info = errors[0].exc_info
    assert once.filter(record) and record.getMessage().endswith("(4 similar suppressed)")


def test_setup_twice_installs_one_filter() -> None:
    logs.setup()
    logs.setup()
    assert sum(isinstance(f, logs.OncePerKind) for f in logging.getLogger("aiohttp.server").filters) == 1
