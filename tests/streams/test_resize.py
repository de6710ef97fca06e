"""Terminal resizes as runtime/streams receives them, over real loopback TCP: the SPDY `resize` stream
(v3/v4: a stream of JSON objects, split anyhow across data frames) and WebSocket channel 4 (v4 and v5:
one object per message). Each size arrives once and in order, whatever else is in flight; a malformed
one is dropped without ending the session; stdin keeps flowing beside them."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from runtime.streams import CommandSession, StreamReset, TerminalSize, accept_command, read_request
from runtime.streams.client import connect_spdy
from tests.streams.test_connection import exec_server, server


def size(width: int, height: int) -> bytes:
    return json.dumps({"Width": width, "Height": height}).encode()


async def record(session: CommandSession, sizes: list[TerminalSize], stdin: bytearray) -> None:
    """Collect sizes and stdin until the client closes stdin (then say so on stdout) and leaves."""

    async def resizes() -> None:
        async for s in session.resizes():
            sizes.append(s)

    watcher = asyncio.create_task(resizes())
    async for chunk in session.stdin_chunks():
        stdin.extend(chunk)
    with contextlib.suppress(StreamReset):  # v4 WebSocket: stdin ends when the client leaves
        await session.write_stdout(b"stdin ended")
    await session.client_gone.wait()
    await asyncio.wait_for(watcher, 10)  # the client left: resizes() ends too


@pytest.mark.parametrize("version", ["v4.channel.k8s.io", "v3.channel.k8s.io"])
async def test_spdy_resize_stream_split_and_joined_objects(version: str) -> None:
    sizes: list[TerminalSize] = []
    stdin = bytearray()
    sessions: list[CommandSession] = []

    async def run(session: CommandSession) -> None:
        sessions.append(session)
        await record(session, sizes, stdin)

    async with server(await exec_server(run, [])) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn, protocol = await connect_spdy(
            reader, writer, "/exec?command=sh&stdin=1&stdout=1&tty=1", (version,)
        )
        assert protocol == version
        # client-go's order: error, stdin, stdout, then resize when there is a TTY
        opened = {
            k: await conn.open_stream((("streamtype", k),)) for k in ("error", "stdin", "stdout", "resize")
        }
        await opened["error"].close()
        resize, stdin_stream = opened["resize"], opened["stdin"]
        await resize.write(size(80, 24))
        first = size(100, 30)
        await resize.write(first[:7])  # one object over two frames
        await stdin_stream.write(b"typed between")
        await resize.write(first[7:])
        await resize.write(size(120, 40) + b"\n" + size(132, 43))  # two in one frame (json.Encoder's \n)
        await resize.write(b'{"Width": "wide", "Height": 5}')  # not a size: dropped
        await resize.write(b"{Width: 1}")  # not JSON: dropped once the next object begins
        await resize.write(size(90, 20))
        await stdin_stream.close()
        out = opened["stdout"]
        assert await asyncio.wait_for(out.read(), 10) == b"stdin ended"
        await conn.close()
        await asyncio.wait_for(sessions[0].client_gone.wait(), 10)
    want = [(80, 24), (100, 30), (120, 40), (132, 43), (90, 20)]
    assert sizes == [TerminalSize(w, h) for w, h in want]
    assert bytes(stdin) == b"typed between"


@pytest.mark.parametrize("version", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_websocket_channel_4_resizes_in_order(version: str) -> None:
    sizes: list[TerminalSize] = []
    stdin = bytearray()
    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = await accept_command(await read_request(reader), reader, writer)
        assert session is not None and session.protocol == version and session.tty
        await record(session, sizes, stdin)
        done.set()

    async with server(handler) as port:
        url = f"ws://127.0.0.1:{port}/exec?command=sh&stdin=1&stdout=1&tty=1"
        async with connect(url, subprotocols=[Subprotocol(version)]) as ws:
            await ws.send(b"\x04" + size(80, 24))
            await ws.send(b"\x00typed ")
            await ws.send(b"\x04" + size(100, 30))
            await ws.send(b"\x04not json")  # dropped
            await ws.send(b"\x04{Width: 1}")  # an object that is not JSON: dropped too
            await ws.send(b"\x04" + size(120, 40))
            await ws.send(b"\x00between")
            if version.startswith("v5."):
                await ws.send(b"\xff\x00")  # v5: the end of stdin
                assert await asyncio.wait_for(ws.recv(), 10) == b"\x01stdin ended"
        # v4 has no half-close: stdin ends with the connection, as with kubectl
        await asyncio.wait_for(done.wait(), 10)
    assert sizes == [TerminalSize(80, 24), TerminalSize(100, 30), TerminalSize(120, 40)]
    assert bytes(stdin) == b"typed between"
