"""The cloud role's part of `kedge status`: served by the running cloud on its 0600 unix socket.

Why a socket and not files: connected edges, pending acks and keepalive times live only in the running
process. ``status(root)`` (what kubeedge_cli/commands/status.py calls) asks the socket and, when nobody
answers, says the cloud is not running. Schema: role, version, running, healthy, message, replica,
leader, replicas, connectedEdges, edges [{name, since, lastKeepalive, replica, peer (kedge|KubeEdge),
version, pendingAcks, ...}], pendingAcks, certificates {ca, serving: notAfter}, tokens [{id, expires,
remainingSeconds, ...}].
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import __version__

if TYPE_CHECKING:
    from runtime.cloud.context import CloudContext
    from runtime.cloud.controllers import CloudControllers
    from runtime.cloud.usage import UsageStore


def socket_path(root: Path) -> Path:
    from runtime.config import load_cloud

    try:
        return Path(load_cloud(None, root).status.socket)
    except Exception:
        from runtime.paths import Paths

        return Paths.of(root, "cloud").status_socket


async def snapshot(ctx: CloudContext, ctl: CloudControllers) -> dict[str, Any]:
    from runtime.pki import certs

    body: dict[str, Any] = {
        "role": "cloud",
        "version": __version__,
        "running": True,
        "pid": os.getpid(),
        "since": ctl.started,
        "message": "",
    }
    body.update(ctl.status())
    ready = ctx.ready()
    body["ready"] = ready
    body["healthy"] = all(ready.values())
    body["addresses"] = dict(ctx.addresses)
    body["certificates"] = {
        "ca": {"notAfter": certs.not_after(ctx.ca.cert).timestamp()},
        "serving": {
            "notAfter": certs.not_after(certs.load_cert(ctx.serving_cert)).timestamp()
            if ctx.serving_cert
            else None
        },
    }
    try:
        body["tokens"] = [t.as_dict() for t in await asyncio.wait_for(ctx.store.list_tokens(), 3.0)]
    except Exception as exc:
        body["tokens"], body["message"] = [], f"tokens: {exc}"
    return body


async def serve_status(ctx: CloudContext, ctl: CloudControllers, usage: UsageStore | None = None) -> None:
    """GET /status on the cloud's unix socket (mode 0600) until cancelled; with ``usage``, the edges'
    resource usage as each node's kubelet would answer it (`/nodes/<node>/metrics/resource`,
    `/nodes/<node>/stats/summary`) and `/usage`, every node's summary (runtime/cloud/usage/)."""
    from aiohttp import web

    from runtime.cloud.usage.kubelet import add_routes, add_usage

    path = Path(getattr(getattr(ctx.cfg, "status", None), "socket", "") or ctx.paths.status_socket)
    _prepare(path)

    async def handle(_: web.Request) -> web.Response:
        return web.json_response(await snapshot(ctx, ctl))

    app = web.Application()
    app.router.add_get("/status", handle)
    if usage is not None:
        add_routes(app, usage, lambda request: request.match_info["node"], prefix="/nodes/{node}")
        add_usage(app, usage)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.UnixSite(runner, str(path))
    await site.start()
    os.chmod(path, 0o600)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _prepare(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def read(path: Path, timeout: float = 3.0) -> dict[str, Any] | None:
    """The running cloud's status, or None when it does not answer."""
    conn = _UnixConnection(str(path), timeout)
    try:
        conn.request("GET", "/status")
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        data = json.loads(resp.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return data if isinstance(data, dict) else None


def status(root: Path) -> dict[str, Any]:
    """What `kedge status` shows for the cloud role (see the module docstring for the schema)."""
    path = socket_path(root)
    live = read(path)
    if live is not None:
        return live
    return {
        "role": "cloud",
        "version": __version__,
        "running": False,
        "healthy": False,
        "since": None,
        "message": f"the cloud (`kedge cloud run`) is not running (no answer on {path})",
        "connectedEdges": 0,
        "edges": [],
        "pendingAcks": None,
        "checkedAt": time.time(),
    }
