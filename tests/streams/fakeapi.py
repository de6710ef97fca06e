"""A test-only API server for real kubectl: just enough of /api to find pod `p`, and the exec, attach and
portforward upgrades, terminated with runtime/streams and served by local stand-ins — a subprocess (a
pty with `-t`) for exec/attach, a TCP connection to 127.0.0.1:<port> for port-forward.

It runs its own event loop in a thread so that tests can run kubectl as a plain subprocess. `events`
records what was negotiated and which terminal sizes arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import struct
import subprocess
import termios
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.streams import (
    CommandSession,
    PortConnection,
    StreamReset,
    accept_command,
    accept_portforward,
    read_request,
    write_response,
)

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "1"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "n1"},
    "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": True, "image": "busybox",
               "imageID": "", "restartCount": 0, "state": {"running": {}}}]},
}  # fmt: skip
SUBRESOURCES = (
    ("exec", "PodExecOptions"),
    ("attach", "PodAttachOptions"),
    ("portforward", "PodPortForwardOptions"),
)
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"]},
            *({"name": f"pods/{sub}", "singularName": "", "namespaced": True, "kind": kind,
               "verbs": ["create", "get"]} for sub, kind in SUBRESOURCES),
        ],
    },
}  # fmt: skip
POD_PATH = "/api/v1/namespaces/default/pods/p"
Writer = Callable[[bytes], Awaitable[None]]


@dataclass
class FakeApi:
    websocket: bool = True  # False: refuse WebSocket upgrades, kubectl falls back to SPDY
    attach_command: tuple[str, ...] = ("sh", "-c", "echo attached; cat")
    events: list[tuple[str, object]] = field(default_factory=list)
    port: int = 0
    loop: asyncio.AbstractEventLoop | None = None

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "t", "user": {}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}],
        }  # fmt: skip
        path.write_text(json.dumps(config))
        return path

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request.path in (POD_PATH + "/exec", POD_PATH + "/attach"):
                session = await accept_command(request, reader, writer, websocket=self.websocket)
                if session is not None:
                    self.events.append(("exec", session.protocol))
                    await self.run(session, request.path.endswith("/attach"))
                return
            if request.path == POD_PATH + "/portforward":
                pf = await accept_portforward(request, reader, writer, websocket=self.websocket)
                if pf is not None:
                    self.events.append(("portforward", pf.protocol))
                    async with asyncio.TaskGroup() as tg:
                        async for conn in pf.connections():
                            tg.create_task(forward(conn))
                return
            body = POD if request.path == POD_PATH else DISCOVERY.get(request.path)
            if body is None:
                write_response(writer, 404, "Not Found", b"{}", "application/json")
            else:
                write_response(writer, 200, "OK", json.dumps(body).encode(), "application/json")
            await writer.drain()
            writer.close()
        except Exception as exc:  # a test server: show what broke, never hang kubectl
            self.events.append(("error", repr(exc)))
            writer.close()

    async def run(self, session: CommandSession, attach: bool) -> None:
        command = list(self.attach_command) if attach else session.command
        if session.tty:
            await self.run_tty(session, command)
            return
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.PIPE if session.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        async def pump(
            source: asyncio.StreamReader | None, write: Callable[[bytes], Awaitable[None]]
        ) -> None:
            assert source is not None
            with contextlib.suppress(StreamReset):  # the client went away: the killer below ends the command
                while data := await source.read(65536):
                    await write(data)

        async def feed() -> None:
            assert proc.stdin is not None
            async for chunk in session.stdin_chunks():
                proc.stdin.write(chunk)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
            proc.stdin.close()

        feeder = asyncio.create_task(feed()) if session.stdin else None
        killer = asyncio.create_task(self.kill_when_gone(session, proc))
        await asyncio.gather(pump(proc.stdout, session.write_stdout), pump(proc.stderr, session.write_stderr))
        code = await proc.wait()
        for task in (feeder, killer):
            if task is not None:
                task.cancel()
        await session.finish(code)

    async def kill_when_gone(self, session: CommandSession, proc: asyncio.subprocess.Process) -> None:
        """What a terminating side must do: stop the command when the client goes away."""
        await session.client_gone.wait()
        if proc.returncode is None:
            self.events.append(("gone", proc.pid))
            proc.kill()

    async def run_tty(self, session: CommandSession, command: list[str]) -> None:
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        loop = asyncio.get_running_loop()

        async def resizes() -> None:
            async for size in session.resizes():
                self.events.append(("resize", (size.width, size.height)))
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))

        async def feed() -> None:
            async for chunk in session.stdin_chunks():
                await loop.run_in_executor(None, os.write, master, chunk)

        tasks = [asyncio.create_task(resizes()), asyncio.create_task(feed())]
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, master, 65536)
            except OSError:  # EIO: the child side is gone
                break
            if not data:
                break
            await session.write_stdout(data)
        code = await proc.wait()
        os.close(master)
        for task in tasks:
            task.cancel()
        await session.finish(code)


async def forward(conn: PortConnection) -> None:
    """One forwarded connection → 127.0.0.1:<port>; a refused connect goes to the error stream."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", conn.port)
    except OSError as exc:
        await conn.fail(f"failed to connect to localhost:{conn.port}: {exc}")
        return

    async def up() -> None:
        while data := await conn.read():
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def down() -> None:
        while data := await reader.read(65536):
            await conn.write(data)

    try:
        await asyncio.gather(up(), down())
    except Exception as exc:
        await conn.fail(str(exc))
    finally:
        writer.close()
        await conn.close()


@contextlib.contextmanager
def serve(api: FakeApi) -> Iterator[FakeApi]:
    """Run `api` on 127.0.0.1:<ephemeral> in a thread's own event loop for the block."""
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(api.handle, "127.0.0.1", 0)
        api.port = server.sockets[0].getsockname()[1]
        api.loop = asyncio.get_running_loop()
        ready.set()
        async with server:
            await stop.wait()
        # let sessions still finishing (a killed client's command, a lingering close) end cleanly
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=10)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "fake API server did not start"
    try:
        yield api
    finally:
        assert api.loop is not None and stop is not None
        api.loop.call_soon_threadsafe(stop.set)
        thread.join(10)
