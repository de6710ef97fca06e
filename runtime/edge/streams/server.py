"""EdgeStreams: the edge's end of stream sessions (runtime/protocol/tunnel.py).

    open message (over the link) ─▶ on_open ─▶ a task per session: dial the tunnel websocket
    (wss://<hub>/<project>/<node>/streams/<sid>, the node's certificate, as EdgeHub dials) ─▶ serve by
    kind: logs.py (the engine's log), execs.py (exec, attach), ports.py (port-forward) ─▶ close.

The first frame says whether the session is served (CONTROL ``ready``) or why not (CONTROL ``error``
with the HTTP status kubelet would answer). At most ``max_sessions`` at once; a session ends when the
cloud closes the tunnel (the client went away) or when what it serves ends, and either way the other
side sees the websocket close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime.edge.dial import ClientTLS, dial
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.streams.containers import SessionError
from runtime.edge.streams.execs import serve_command
from runtime.edge.streams.logs import open_log
from runtime.edge.streams.ports import serve_port
from runtime.errors import KedgeError
from runtime.protocol import Message
from runtime.protocol.tunnel import STDOUT, OpenRequest, TunnelError, control, frame, parse_open, stream_path

log = logging.getLogger("kedge.edgestream")
FRAME = 256 << 10  # bytes of payload per tunnel frame (the cloud takes frames up to 8 MiB)

Serve = Callable[["EdgeStreams", OpenRequest, ClientConnection], Awaitable[None]]


class EdgeStreams:
    def __init__(self, server: str, node: str, project: str, tls: ClientTLS, docker: DockerAdapter,
                 *, max_sessions: int = 32, connect_timeout: float = 5.0) -> None:  # fmt: skip
        self.server, self.node, self.project, self.tls = server, node, project, tls
        self.docker = docker
        self.max_sessions, self.connect_timeout = max_sessions, connect_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self.served = 0

    def status(self) -> dict[str, Any]:
        return {"sessions": len(self._tasks), "served": self.served}

    async def on_open(self, msg: Message) -> None:
        try:
            req = parse_open(msg)
        except TunnelError as exc:
            log.warning("%s", exc)
            return
        if len(self._tasks) >= self.max_sessions:
            log.warning(
                "stream %s %s/%s refused: %d sessions already",
                req.kind,
                req.namespace,
                req.pod,
                len(self._tasks),
            )
            return  # the cloud's open times out and says so; it also keeps its own cap
        task = asyncio.create_task(self._session(req), name=f"stream-{req.kind}-{req.sid[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.docker.close()

    async def _session(self, req: OpenRequest) -> None:
        url = f"wss://{self.server}{stream_path(self.project, self.node, req.sid)}"
        try:
            async with dial(url, self.tls, {"node_id": self.node}, max_frame_bytes=1 << 20, heartbeat=15.0,
                            dead_after=30.0, connect_timeout=self.connect_timeout) as ws:  # fmt: skip
                self.served += 1
                await self._serve(req, ws)
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            log.info("stream %s %s/%s ended: %s", req.kind, req.namespace, req.pod, exc)
        except Exception:
            log.exception("stream %s %s/%s failed", req.kind, req.namespace, req.pod)

    async def _serve(self, req: OpenRequest, ws: ClientConnection) -> None:
        try:
            if req.kind == "logs":
                await self._logs(req, ws)
            elif req.kind in ("exec", "attach"):
                await serve_command(self.docker, self.node, req, ws)
            else:
                await serve_port(self.docker, self.node, req, ws)
        except SessionError as exc:
            await ws.send(control("error", code=exc.code, message=exc.message))
        except KedgeError as exc:
            await ws.send(control("error", code=500, message=str(exc)))

    async def _logs(self, req: OpenRequest, ws: ClientConnection) -> None:
        chunks = await open_log(self.docker, self.node, req)
        await ws.send(control("ready"))
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            while True:
                nxt = asyncio.ensure_future(anext(chunks, b""))
                await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():  # the client went away while the log was quiet (logs -f)
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await nxt
                    return
                chunk = nxt.result()
                if not chunk:
                    return
                for i in range(0, len(chunk), FRAME):
                    await ws.send(frame(STDOUT, chunk[i : i + FRAME]))
        finally:
            closed.cancel()
            await chunks.aclose()  # type: ignore[attr-defined]
