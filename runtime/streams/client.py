"""A small SPDY client: the upgrade request and a remote command run the way client-go does it (for tests,
benchmarks and in-process checks; kubectl is the client that matters).

    conn, protocol = await connect_spdy(reader, writer, "/exec?command=true&stdout=1", ("v4.channel.k8s.io",))
    result = await run_command(conn, stdin=b"...", stdout=True, stderr=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import h11

from runtime.streams.connection import SpdyConnection, SpdyStream
from runtime.streams.transport import StreamTransport
from runtime.streams.upgrade import UpgradeError


async def connect_spdy(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    target: str,
    protocols: tuple[str, ...],
    *,
    host: str = "localhost",
    flow_control: bool = True,
) -> tuple[SpdyConnection, str]:
    """POST `target` with an upgrade to SPDY/3.1 offering `protocols`; the connection and the protocol
    the server chose. `flow_control` announces our windows (spdystream does not)."""
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", host), ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("Content-Length", "0")]
    headers += [("X-Stream-Protocol-Version", p) for p in protocols]
    writer.write(conn.send(h11.Request(method="POST", target=target, headers=headers)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(16384)
            if not data:
                raise UpgradeError("server closed the connection during the upgrade")
            conn.receive_data(data)
        elif isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            chosen = dict((n.decode().lower(), v.decode()) for n, v in event.headers).get(
                "x-stream-protocol-version"
            )
            break
        elif isinstance(event, h11.Response):
            raise UpgradeError(f"upgrade refused: HTTP {event.status_code}")
        else:
            raise UpgradeError(f"unexpected HTTP event {event!r}")
    transport = StreamTransport(reader, writer, conn.trailing_data[0])
    spdy_conn = SpdyConnection(transport, server=False, flow_control=flow_control)
    if flow_control:
        await spdy_conn.announce_flow_control()
    return spdy_conn, chosen or ""


@dataclass
class CommandResult:
    stdout: bytes
    stderr: bytes
    error: bytes  # the error stream's text (a Status JSON on v4)

    @property
    def exit_code(self) -> int:
        """0 on success; the ExitCode cause of a v4 NonZeroExitCode Status; 1 for any other failure."""
        if not self.error:
            return 0
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            status = json.loads(self.error)
            if status.get("status") == "Success":
                return 0
            for cause in status["details"]["causes"]:
                if cause.get("reason") == "ExitCode":
                    return int(cause["message"])
        return 1


async def run_command(
    conn: SpdyConnection, *, stdin: bytes | None = None, stderr: bool = True
) -> CommandResult:
    """Open the streams as client-go does (error, then stdin/stdout/stderr), send `stdin` and close it,
    collect the output until the server ends the streams."""

    async def open_(kind: str) -> SpdyStream:
        return await conn.open_stream((("streamtype", kind),))

    async def drain(stream: SpdyStream | None) -> bytes:
        out = bytearray()
        while stream is not None and (chunk := await stream.read()):
            out += chunk
        return bytes(out)

    error = await open_("error")
    await error.close()
    stdin_stream = await open_("stdin") if stdin is not None else None
    out, err = await open_("stdout"), await open_("stderr") if stderr else None

    async def feed() -> None:
        if stdin_stream is not None and stdin is not None:
            await stdin_stream.write(stdin)
            await stdin_stream.close()

    _, stdout_bytes, stderr_bytes, error_bytes = await asyncio.gather(
        feed(), drain(out), drain(err), drain(error)
    )
    return CommandResult(stdout_bytes, stderr_bytes, error_bytes)
