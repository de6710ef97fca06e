"""runtime/streams over real loopback TCP, both ends in process: the SPDY connection (flow control with a
peer that speaks it, backpressure, PING, RST, GOAWAY on bad input), the upgrade answers, and an exec
session driven by the small client with the query the API server sends to a kubelet."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from runtime.streams import (
    CommandSession,
    PortConnection,
    PortForwardSession,
    SpdyConnection,
    StreamRequest,
    StreamReset,
    StreamTransport,
    UpgradeError,
    accept_command,
    accept_portforward,
    read_request,
    spdy,
)
from runtime.streams.client import connect_spdy, run_command
from runtime.streams.connection import SpdyStream
from tests.fixtures.wait import eventually_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with srv:
        yield srv.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def spdy_pair(peer_flow_control: bool = True) -> AsyncIterator[tuple[SpdyConnection, SpdyConnection]]:
    """(client, server) SPDY connections over one loopback TCP connection, no HTTP upgrade."""
    accepted: asyncio.Future[SpdyConnection] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = SpdyConnection(StreamTransport(reader, writer), server=True)
        accepted.set_result(conn)
        await conn.wait_closed()

    async with server(handler) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = SpdyConnection(StreamTransport(reader, writer), server=False, flow_control=peer_flow_control)
        if peer_flow_control:
            await client.announce_flow_control()
        srv = await asyncio.wait_for(accepted, 10)
        try:
            yield client, srv
        finally:
            await client.close()
            await srv.close()


async def open_stream(client: SpdyConnection, srv: SpdyConnection) -> tuple[SpdyStream, SpdyStream]:
    """A stream the client opens and the server accepts: (client's end, server's end)."""
    opened = asyncio.create_task(client.open_stream((("streamtype", "data"),)))
    stream = await srv.accept()
    assert stream is not None
    await stream.reply()
    return await opened, stream


async def read_all(stream: SpdyStream) -> bytes:
    out = bytearray()
    while chunk := await stream.read():
        out += chunk
    return bytes(out)


async def test_a_large_transfer_each_way_respects_the_windows() -> None:
    payload = os.urandom(5 << 20)
    async with spdy_pair() as (client, srv):
        mine, stream = await open_stream(client, srv)
        assert stream.header("streamType") == "data"
        assert srv.peer_flow_control  # the client's SETTINGS said so

        async def send(s: SpdyStream) -> None:
            await s.write(payload)
            await s.close()

        results = await asyncio.gather(send(mine), send(stream), read_all(stream), read_all(mine))
        assert hashlib.sha256(results[2]).digest() == hashlib.sha256(payload).digest()
        assert results[3] == payload
        assert client.error is None and srv.error is None


async def test_a_writer_stalls_at_the_peer_window_until_it_reads() -> None:
    async with spdy_pair() as (client, srv):
        mine, stream = await open_stream(client, srv)
        window = client.window  # announced by the client's SETTINGS and session WINDOW_UPDATE
        assert stream.send_window.available == srv.session_send.available == window
        writer = asyncio.create_task(stream.write(b"x" * (window * 3)))
        await eventually_async(lambda: mine._buffered == window, what="one window arrived")
        done, _ = await asyncio.wait({writer}, timeout=0.5)  # the thing under test: it must NOT finish
        assert not done
        assert stream.send_window.available == 0 and mine._buffered == window  # and not a byte more
        assert client.peer_initial_window == srv.window  # the server answered in kind
        got = 0
        while got < window * 3:
            got += len(await mine.read())  # reading sends WINDOW_UPDATEs, the writer goes on
        await asyncio.wait_for(writer, 10)
        await stream.close()
        await mine.close()


async def test_a_peer_without_flow_control_is_served_by_tcp_backpressure_alone() -> None:
    async with spdy_pair(peer_flow_control=False) as (client, srv):  # like spdystream: never a WINDOW_UPDATE
        mine, stream = await open_stream(client, srv)
        await asyncio.wait_for(stream.write(b"y" * (spdy.DEFAULT_WINDOW * 4)), 10)  # not limited to a window
        await stream.close()
        assert len(await read_all(mine)) == spdy.DEFAULT_WINDOW * 4
        await mine.close()


async def test_ping_is_echoed_and_reset_reaches_the_other_side() -> None:
    async with spdy_pair() as (client, srv):
        mine, stream = await open_stream(client, srv)
        frames: list[spdy.Frame] = []
        original = client._handle

        async def spy(frame: spdy.Frame) -> None:
            frames.append(frame)
            await original(frame)

        client._handle = spy  # type: ignore[method-assign]
        await srv.ping(2)
        await stream.reset(spdy.CANCEL)
        with pytest.raises(StreamReset):
            await asyncio.wait_for(mine.read(), 10)
        with pytest.raises(ConnectionError):  # what callers that handle a lost connection catch
            await stream.write(b"after the reset")
        assert spdy.Ping(2) in frames and spdy.RstStream(stream.id, spdy.CANCEL) in frames


async def test_garbage_from_the_peer_gets_goaway_and_ends_every_stream() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = SpdyConnection(StreamTransport(reader, writer), server=True)
        await conn.wait_closed()
        assert conn.error is not None and conn.error.status == spdy.UNSUPPORTED_VERSION

    async with server(handler) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")  # SPDY/2
        parser = spdy.FrameParser()
        parser.feed(await asyncio.wait_for(reader.read(), 10))  # until the server closes
        assert parser.frames() == [spdy.GoAway(0, spdy.GOAWAY_PROTOCOL_ERROR)]
        writer.close()


async def exec_server(run: Callable[[CommandSession], Awaitable[None]], seen: list[StreamRequest]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        seen.append(request)
        session = await accept_command(request, reader, writer)
        if session is not None:
            await run(session)

    return handler


async def test_exec_with_the_kubelet_query_through_the_small_client() -> None:
    """What an API server sends a kubelet: input/output/error, `command` repeated."""

    async def run(session: CommandSession) -> None:
        assert (session.stdin, session.stdout, session.stderr, session.tty) == (True, True, True, False)
        data = b"".join([chunk async for chunk in session.stdin_chunks()])
        await session.write_stdout(data.upper())
        await session.write_stderr(" ".join(session.command).encode())
        await session.finish(7)

    seen: list[StreamRequest] = []
    async with server(await exec_server(run, seen)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        target = "/exec/default/p/c?command=sh&command=-c&command=x&input=1&output=1&error=1"
        offered = ("v4.channel.k8s.io", "v3.channel.k8s.io")
        conn, protocol = await connect_spdy(reader, writer, target, offered)
        assert protocol == "v4.channel.k8s.io"
        result = await asyncio.wait_for(run_command(conn, stdin=b"abc" * 50000), 30)
        await conn.close()
    assert result.stdout == b"ABC" * 50000
    assert result.stderr == b"sh -c x"
    assert result.exit_code == 7
    assert seen[0].query["command"] == ["sh", "-c", "x"]


@pytest.mark.parametrize("version", ["v3.channel.k8s.io", "v2.channel.k8s.io"])
async def test_v2_v3_get_the_error_as_text_and_success_as_nothing(version: str) -> None:
    async def run(session: CommandSession) -> None:
        await session.finish(0 if session.command == ["true"] else None, None if session.command else "boom")

    async with server(await exec_server(run, [])) as port:
        for target, want in (("/exec?command=true&output=1", b""), ("/exec?output=1", b"boom")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conn, protocol = await connect_spdy(reader, writer, target, (version,))
            assert protocol == version
            result = await asyncio.wait_for(run_command(conn, stderr=False), 30)
            assert result.error == want
            await conn.close()


async def test_unknown_stream_protocols_and_missing_channels_are_refused_without_101() -> None:
    async def run(session: CommandSession) -> None:
        await session.finish(0)

    async with server(await exec_server(run, [])) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(UpgradeError, match="403"):
            await connect_spdy(reader, writer, "/exec?output=1", ("v1.channel.k8s.io",))
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(UpgradeError, match="400"):  # none of stdin/stdout/stderr
            await connect_spdy(reader, writer, "/exec?tty=1", ("v4.channel.k8s.io",))
        writer.close()


async def test_stdin_a_command_does_not_read_slows_the_client_down() -> None:
    """The session holds a bounded number of chunks; past that the SPDY window stops the client."""
    reading = asyncio.Event()
    total = 16 << 20

    async def run(session: CommandSession) -> None:
        await reading.wait()
        got = sum([len(chunk) async for chunk in session.stdin_chunks()])
        await session.write_stdout(str(got).encode())
        await session.finish(0)

    async with server(await exec_server(run, [])) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn, _ = await connect_spdy(
            reader, writer, "/exec?command=x&input=1&output=1", ("v4.channel.k8s.io",)
        )
        running = asyncio.create_task(run_command(conn, stdin=b"z" * total, stderr=False))
        done, _ = await asyncio.wait({running}, timeout=1.0)  # the thing under test: it must NOT finish
        assert not done
        stdin = next(s for s in conn.streams.values() if s.headers == (("streamtype", "stdin"),))
        assert not stdin.local_closed  # still writing: held back by the window, not buffered away
        reading.set()
        result = await asyncio.wait_for(running, 60)
        await conn.close()
    assert result.stdout == str(total).encode()


async def test_unread_data_of_a_reset_stream_frees_its_buffer_and_window() -> None:
    async with spdy_pair() as (client, srv):
        mine, stream = await open_stream(client, srv)
        await stream.write(b"q" * 300_000)
        await stream.close()
        await eventually_async(lambda: mine.remote_closed, what="all data arrived")
        assert client.buffered == 300_000
        await mine.reset()
        assert client.buffered == 0  # else the connection's backpressure would stall for good
        assert client.session_recv.unacked == 300_000  # credited: the session window is not lost
        mine2, stream2 = await open_stream(client, srv)

        async def send() -> None:
            await stream2.write(b"r" * client.window)  # more than what is left without that credit
            await stream2.close()

        got = await asyncio.wait_for(asyncio.gather(send(), read_all(mine2)), 10)
        assert len(got[1]) == client.window
        await mine2.close()


async def test_streams_past_the_limit_are_refused() -> None:
    async with spdy_pair() as (client, srv):
        srv.max_streams = 2
        ends = [await open_stream(client, srv) for _ in range(2)]
        with pytest.raises(StreamReset, match="refused"):
            await asyncio.wait_for(client.open_stream((("streamtype", "data"),)), 10)
        for mine, stream in ends:
            await mine.close()
            await stream.close()


async def test_port_forward_pairs_streams_and_rejects_bad_ones() -> None:
    sessions: list[PortForwardSession] = []
    paired: list[PortConnection] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = await accept_portforward(await read_request(reader), reader, writer)
        assert session is not None
        session.pair_timeout = 0.2
        sessions.append(session)
        async for conn in session.connections():
            paired.append(conn)
            await conn.write(b"port %d" % conn.port)
            await conn.close()

    async with server(handler) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn, protocol = await connect_spdy(reader, writer, "/portforward?port=80", ("portforward.k8s.io",))
        assert protocol == "portforward.k8s.io"

        def headers(kind: str, port: str, rid: str) -> spdy.Headers:
            return (("streamtype", kind), ("port", port), ("requestid", rid))

        # a good pair, data stream first: paired by requestID whatever the order
        data = await conn.open_stream(headers("data", "80", "1"))
        error = await conn.open_stream(headers("error", "80", "1"))
        assert await read_all(data) == b"port 80" and await read_all(error) == b""
        # a bad port: the message on the error stream, which ends
        bad = await conn.open_stream(headers("error", "http", "2"))
        assert b"invalid port" in await read_all(bad)
        # half a pair: reset when its partner does not come
        lonely = await conn.open_stream(headers("error", "81", "3"))
        with pytest.raises(StreamReset):
            await asyncio.wait_for(read_all(lonely), 10)
        for stream in (data, error, bad):
            await stream.close()
        await conn.close()
    assert [(c.port, c.request_id) for c in paired] == [(80, "1")]
    assert sessions[0].ports == [80]


async def test_windows_announced_late_apply_to_streams_already_open() -> None:
    async with spdy_pair(peer_flow_control=False) as (client, srv):
        mine, stream = await open_stream(client, srv)  # opened before anyone spoke of flow control
        await client.announce_flow_control()  # the server answers with its 1 MiB window ...
        await eventually_async(lambda: client.peer_initial_window == srv.window, what="the answer")
        assert mine.send_window.available == srv.window  # ... which the open stream gets too

        async def send() -> None:
            await mine.write(b"w" * srv.window)  # a whole new window at once: within what we were told
            await mine.close()

        got = await asyncio.wait_for(asyncio.gather(send(), read_all(stream)), 10)
        assert len(got[1]) == srv.window and stream.reset_status is None
        await stream.close()
