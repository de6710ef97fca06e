"""The WebSocket exec path of runtime/streams with the `websockets` client as the peer: the channel byte,
v5's close channel, resize, the error channel's Status on v4 and v5, and the non-101 refusal of a
subprotocol we do not speak (what makes kubectl fall back to SPDY)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from runtime.streams import CommandSession, TerminalSize, accept_command, read_request
from runtime.streams.remotecommand import status_for

Run = Callable[[CommandSession], Awaitable[None]]


async def start(run: Run) -> tuple[asyncio.Server, int]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = await accept_command(await read_request(reader), reader, writer)
        if session is not None:
            await run(session)

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def messages(ws: ClientConnection) -> AsyncIterator[bytes]:
    async for message in ws:
        assert isinstance(message, bytes)
        yield message


async def test_v5_channels_resize_and_the_close_signal() -> None:
    sizes: list[TerminalSize] = []

    async def run(session: CommandSession) -> None:
        assert (session.stdin, session.stdout, session.tty, session.protocol) == (
            True,
            True,
            True,
            "v5.channel.k8s.io",
        )
        resizes = asyncio.create_task(_collect(session, sizes))
        async for chunk in session.stdin_chunks():  # ends with the client's close of channel 0
            await session.write_stdout(chunk.upper())
        await session.finish(0)
        resizes.cancel()

    server, port = await start(run)
    async with server:
        url = f"ws://127.0.0.1:{port}/exec?command=sh&stdin=1&stdout=1&tty=1"
        async with connect(url, subprotocols=[Subprotocol("v5.channel.k8s.io")]) as ws:
            assert ws.subprotocol == "v5.channel.k8s.io"
            await ws.send(b"\x04" + json.dumps({"Width": 100, "Height": 30}).encode())
            await ws.send(b"\x00abc")
            await ws.send(b"\x00def")
            await ws.send(b"\xff\x00")  # v5: close stdin
            got = [m async for m in messages(ws)]
    assert got[:-1] == [b"\x01ABC", b"\x01DEF"]
    assert got[-1][:1] == b"\x03" and json.loads(got[-1][1:]) == {"metadata": {}, "status": "Success"}
    assert sizes == [TerminalSize(100, 30)]


async def _collect(session: CommandSession, sizes: list[TerminalSize]) -> None:
    async for size in session.resizes():
        sizes.append(size)


async def test_v4_error_channel_carries_the_exit_code() -> None:
    async def run(session: CommandSession) -> None:
        await session.write_stderr(b"oops")
        await session.finish(2)

    server, port = await start(run)
    async with server:
        url = f"ws://127.0.0.1:{port}/exec?command=false&stdout=1&stderr=1"
        async with connect(url, subprotocols=[Subprotocol("v4.channel.k8s.io")]) as ws:
            got = [m async for m in messages(ws)]
    assert got[0] == b"\x02oops"
    status = json.loads(got[1][1:])
    assert (got[1][:1], status["status"], status["reason"]) == (b"\x03", "Failure", "NonZeroExitCode")
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]


@pytest.mark.parametrize("offer", [["base64.channel.k8s.io"], ["channel.k8s.io"], []])
async def test_subprotocols_we_do_not_speak_are_refused_without_101(offer: list[str]) -> None:
    async def run(session: CommandSession) -> None:  # never reached
        raise AssertionError("upgraded")

    server, port = await start(run)
    async with server:
        url = f"ws://127.0.0.1:{port}/exec?command=true&stdout=1"
        with pytest.raises(InvalidStatus) as err:
            await connect(url, subprotocols=[Subprotocol(p) for p in offer] or None)
    assert err.value.response.status_code == 400


async def test_input_nobody_reads_never_holds_up_the_session() -> None:
    """Resizes a caller ignores (only the latest few are kept) and stdin the request did not ask for
    (dropped) must not block the reader: the client's leaving is still seen."""
    noticed = asyncio.Event()

    async def run(session: CommandSession) -> None:
        await session.client_gone.wait()  # reads neither resizes() nor stdin_chunks()
        noticed.set()
        assert [s async for s in session.resizes()] == [TerminalSize(w, 24) for w in range(192, 200)]

    server, port = await start(run)
    async with server:
        url = f"ws://127.0.0.1:{port}/exec?command=sh&stdout=1&tty=1"
        async with connect(url, subprotocols=[Subprotocol("v5.channel.k8s.io")]) as ws:
            for width in range(200):
                await ws.send(b"\x04" + json.dumps({"Width": width, "Height": 24}).encode())
                await ws.send(b"\x00" + b"x" * 1000)
        await asyncio.wait_for(noticed.wait(), 10)


@pytest.mark.parametrize(
    ("code", "message", "status", "cause"),
    [
        (0, None, "Success", None),
        (None, None, "Success", None),
        (3, None, "Failure", "3"),
        (-9, None, "Failure", "137"),  # killed by SIGKILL: what a shell shows
        (300, None, "Failure", "255"),  # client-go reads the cause as a uint8
        (None, "container not found", "Failure", None),
    ],
)
def test_error_channel_status(code: int | None, message: str | None, status: str, cause: str | None) -> None:
    got = status_for(code, message)
    assert got["status"] == status
    if cause is not None:
        assert got["reason"] == "NonZeroExitCode"
        assert got["details"] == {"causes": [{"reason": "ExitCode", "message": cause}]}
    elif message:
        assert (got["message"], got["reason"]) == (message, "InternalError")
