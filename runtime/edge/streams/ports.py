"""port-forward on the edge: a TCP connection to the pod's port in the pod's network — the sandbox's
address on the engine's bridge (every container of a kedge pod joins the sandbox's network namespace,
pods/translate.py), 127.0.0.1 for a hostNetwork pod. A session without a port only checks that the
pod has a running sandbox (the cloud asks before it answers the client's upgrade)."""

from __future__ import annotations

import asyncio
import contextlib
import os

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.streams.containers import SessionError, sandbox_for
from runtime.protocol.tunnel import CLOSE, STDIN, STDOUT, OpenRequest, control, frame, split

CHUNK = 32 << 10


def pod_address(sandbox: dict[str, object]) -> str:
    host = sandbox.get("HostConfig") or {}
    if isinstance(host, dict) and host.get("NetworkMode") == "host":
        return "127.0.0.1"
    net = sandbox.get("NetworkSettings") or {}
    assert isinstance(net, dict)
    if net.get("IPAddress"):
        return str(net["IPAddress"])
    for attached in (net.get("Networks") or {}).values():
        if attached.get("IPAddress"):
            return str(attached["IPAddress"])
    return ""


async def serve_port(docker: DockerAdapter, node: str, req: OpenRequest, ws: ClientConnection) -> None:
    sandbox = await sandbox_for(docker, node, req)
    port = str(req.options.get("port") or "")
    if not port:
        await ws.send(control("ready"))
        return
    address = pod_address(sandbox)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, int(port)), 5.0)
    except (OSError, TimeoutError, ValueError) as exc:  # worded as Go's dialer, as kubelet's message
        # the errno's own text: asyncio's loop words a refused connect "Connect call failed (...)"
        errno = exc.errno if isinstance(exc, OSError) else None
        why = f"connect: {os.strerror(errno).lower()}" if errno else str(exc) or "i/o timeout"
        where = f"dial tcp {address}:{port}"
        raise SessionError(500, f"error forwarding port {port} to pod {req.pod}: {where}: {why}") from None
    await ws.send(control("ready"))
    try:
        up = asyncio.ensure_future(_to_pod(ws, writer))
        while data := await reader.read(CHUNK):
            await ws.send(frame(STDOUT, data))
        up.cancel()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _to_pod(ws: ClientConnection, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionClosed, ConnectionError):
        async for message in ws:
            channel, data = split(message)
            if channel == STDIN:
                writer.write(data)
                await writer.drain()
            elif channel == CLOSE and writer.can_write_eof():
                writer.write_eof()
    writer.close()  # the client is gone: so is the pod connection
