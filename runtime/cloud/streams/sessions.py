"""An upgraded session, terminated here (runtime/streams) and carried over tunnels as channel frames.

- ``serve_command`` (exec, attach): the client's stdin → STDIN frames (its end → CLOSE), terminal
  resizes → RESIZE frames; STDOUT/STDERR frames → the client; the edge's CONTROL ``exit`` → the
  session's result (exit code and message). The client leaving or the tunnel closing ends both.
- ``serve_portforward``: each forwarded connection (port, requestID) gets a tunnel of its own, opened
  for its port; bytes both ways, half-closes passed on (CLOSE), the edge's dial error on the
  connection's error stream as kubelet's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.cloud.streams.tunnels import Tunnel
from runtime.errors import KedgeError
from runtime.protocol.tunnel import (
    CLOSE,
    CONTROL,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    TunnelError,
    control_payload,
    parse_control,
)
from runtime.streams import CommandSession, PortConnection, PortForwardSession

log = logging.getLogger("kedge.cloudstream")
FRAME = 32 << 10


async def _feed(session: CommandSession, tunnel: Tunnel) -> None:
    async def stdin() -> None:
        async for chunk in session.stdin_chunks():
            for i in range(0, len(chunk), FRAME):
                await tunnel.send(STDIN, chunk[i : i + FRAME])
        await tunnel.send(CLOSE, b"")

    async def resizes() -> None:
        async for size in session.resizes():
            await tunnel.send(RESIZE, json.dumps({"Width": size.width, "Height": size.height}).encode())

    await asyncio.gather(stdin(), resizes())


async def serve_command(session: CommandSession, tunnel: Tunnel) -> None:
    await tunnel.send(CONTROL, control_payload("start"))
    feeder = asyncio.ensure_future(_feed(session, tunnel))
    gone = asyncio.ensure_future(session.client_gone.wait())
    code: int | None = None
    message: str | None = "the edge ended the stream without an exit status"
    try:
        while True:
            nxt = asyncio.ensure_future(tunnel.recv())
            await asyncio.wait({nxt, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                message = "client went away"
                break
            item = nxt.result()
            if item is None:
                break
            channel, data = item
            if channel == STDOUT:
                await session.write_stdout(data)
            elif channel == STDERR:
                await session.write_stderr(data)
            elif channel == CONTROL:
                doc = parse_control(data)
                if doc["type"] in ("exit", "error"):
                    code = doc.get("code") if doc["type"] == "exit" else None
                    message = doc.get("message") or None
                    break
    except (TunnelError, ConnectionError, OSError) as exc:
        message = f"stream broken: {exc}"
    finally:
        for task in (feeder, gone):
            task.cancel()
        await asyncio.gather(feeder, gone, return_exceptions=True)
    await session.finish(code, message)


async def serve_portforward(
    session: PortForwardSession, open_port: Callable[[int], Awaitable[Tunnel]]
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    try:
        async for conn in session.connections():
            task = asyncio.create_task(_forward(conn, open_port), name=f"portforward-{conn.port}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await session.close()


async def _forward(conn: PortConnection, open_port: Callable[[int], Awaitable[Tunnel]]) -> None:
    try:
        tunnel = await open_port(conn.port)
    except KedgeError as exc:
        await conn.fail(str(exc))
        return

    async def up() -> None:
        while data := await conn.read():
            await tunnel.send(STDIN, data)
        await tunnel.send(CLOSE, b"")

    sender = asyncio.ensure_future(up())
    try:
        while (item := await tunnel.recv()) is not None:
            channel, data = item
            if channel == STDOUT:
                await conn.write(data)
            elif channel == CONTROL:
                doc: dict[str, Any] = parse_control(data)
                if doc["type"] == "error":
                    await conn.fail(str(doc.get("message") or "port-forward failed"))
                    return
    except (TunnelError, ConnectionError, OSError) as exc:
        log.debug("port-forward %s: %s", conn.port, exc)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await tunnel.close()
        await conn.close()
