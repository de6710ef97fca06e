"""exec and attach on the edge: ``docker exec`` / ``docker attach`` through the docker SDK's hijacked
sockets. The output is read on a thread of its own (pump.py; docker's 8-byte frame headers split by
the SDK's frames_iter, a tty's bytes as they come), stdin written with ``sendall`` off the loop, the
client's end of stdin a half-close of the socket (the process sees EOF), resizes ``exec_resize`` /
``resize``. When the output ends the exit code comes from ``exec_inspect`` and goes back as CONTROL
``exit``; when the tunnel closes (the client left) the socket is shut down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.streams.containers import SessionError, container_for
from runtime.edge.streams.pump import pumped
from runtime.protocol.tunnel import (
    CLOSE,
    CONTROL,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    OpenRequest,
    control,
    frame,
    parse_control,
    split,
)

EXIT_WAIT = 5.0  # seconds the engine may take to record an ended exec's exit code


def _flag(opts: dict[str, Any], name: str) -> bool:
    value = opts.get(name)
    last = value[-1] if isinstance(value, list) and value else value
    return str(last or "").lower() in ("1", "true")


class _Hijacked:
    """The SDK's socket of one exec/attach and how to resize its terminal and learn its exit code."""

    def __init__(self, sock: Any, tty: bool, resize: Callable[[Any, int, int], Any],
                 exit_code: Callable[[Any], int | None]) -> None:  # fmt: skip
        self.sock, self.tty, self.resize, self.exit_code = sock, tty, resize, exit_code
        self.raw: socket.socket = getattr(sock, "_sock", sock)

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        with contextlib.suppress(OSError):
            self.raw.shutdown(how)


async def _start(docker: DockerAdapter, req: OpenRequest, cid: str) -> _Hijacked:
    opts = req.options
    stdin = _flag(opts, "stdin")
    if req.kind == "attach":
        info = await docker.inspect(cid) or {}
        tty = bool((info.get("Config") or {}).get("Tty"))
        params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1}
        sock = await docker.call(lambda api: api.attach_socket(cid, params=params))
        return _Hijacked(sock, tty, lambda api, w, h: api.resize(cid, height=h, width=w), lambda api: 0)
    command = [str(c) for c in opts.get("command") or []]
    if not command:
        raise SessionError(400, "you must specify at least one command for the container")
    tty = _flag(opts, "tty")

    def begin(api: Any) -> tuple[str, Any]:
        created = api.exec_create(cid, command, stdin=stdin, stdout=True, stderr=True, tty=tty)
        return created["Id"], api.exec_start(created["Id"], socket=True, tty=tty)

    eid, sock = await docker.call(begin)
    return _Hijacked(
        sock,
        tty,
        lambda api, w, h: api.exec_resize(eid, height=h, width=w),
        lambda api: api.exec_inspect(eid),
    )


async def serve_command(docker: DockerAdapter, node: str, req: OpenRequest, ws: ClientConnection) -> None:
    info = await container_for(docker, node, req, running=True)
    await ws.send(control("ready"))
    try:
        channel, data = split(await ws.recv())
    except ConnectionClosed:
        return  # the client's upgrade failed or it left: nothing was started
    if channel != CONTROL or parse_control(data)["type"] != "start":
        return
    session = await _start(docker, req, info["Id"])
    inputs = asyncio.ensure_future(_inputs(docker, session, ws))
    output = asyncio.ensure_future(_output(session, ws))
    try:
        await asyncio.wait({inputs, output}, return_when=asyncio.FIRST_COMPLETED)
        if output.done():
            output.result()
            await ws.send(control("exit", code=await _exit_code(docker, session), message=""))
    finally:
        session.shutdown()
        for task in (inputs, output):
            task.cancel()
        await asyncio.gather(inputs, output, return_exceptions=True)


async def _output(session: _Hijacked, ws: ClientConnection) -> None:
    from docker.utils.socket import frames_iter

    def frames() -> Iterable[tuple[int, bytes]]:
        return frames_iter(session.sock, session.tty)

    async for stream, data in pumped(frames, session.shutdown, name="exec"):
        await ws.send(frame(STDERR if stream == 2 else STDOUT, data))


async def _inputs(docker: DockerAdapter, session: _Hijacked, ws: ClientConnection) -> None:
    """Until the tunnel closes: stdin, its end, resizes."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            channel, data = split(message)
            if channel == STDIN:
                await loop.run_in_executor(None, session.raw.sendall, data)
            elif channel == CLOSE:
                session.shutdown(socket.SHUT_WR)
            elif channel == RESIZE:
                size = json.loads(data)
                width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
                if width > 0 and height > 0:
                    with contextlib.suppress(Exception):  # a resize racing the end is no error
                        await _resize(docker, session, width, height)


async def _resize(docker: DockerAdapter, session: _Hijacked, width: int, height: int) -> None:
    await docker.call(lambda api: session.resize(api, width, height))


async def _exit_code(docker: DockerAdapter, session: _Hijacked) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EXIT_WAIT
    while True:
        state = await docker.call(session.exit_code)
        if not isinstance(state, dict):
            return int(state or 0)
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        if loop.time() > deadline:
            return -1
        await asyncio.sleep(0.05)
