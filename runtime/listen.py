"""Listening sockets: an address that cannot be bound becomes one KedgeError naming it and the fix.

`kedge apiserver`, `kedge cloud run` (health, certificate server, CloudHub) all bind ports a user may
already be using; Python's own error is a traceback ending in "[Errno 98] ... address already in use".
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import Any

from runtime.errors import KedgeError

_WHY = {
    errno.EADDRINUSE: "is in use by another process",
    errno.EADDRNOTAVAIL: "is not an address of this machine",
    errno.EACCES: "needs privileges (ports below 1024)",
}


CLOUD_HINT = (
    "another kedge cloud (or KubeEdge's cloudcore) may hold it: `kedge status`; or move kedge's port "
    "in cloud.toml (hub.websocket_port, hub.cert_port, metrics_address)"
)


class AddressInUse(KedgeError):
    """A port kedge must listen on cannot be bound."""


@contextlib.contextmanager
def binding(what: str, host: str, port: int, *, hint: str) -> Iterator[None]:
    """Turn the OSError of binding `host:port` into AddressInUse naming `what` and `hint`."""
    try:
        yield
    except OSError as exc:
        why = _WHY.get(exc.errno or 0)
        if why is None:
            raise
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise AddressInUse(f"{what}: cannot listen on {addr}: the address {why}", hint=hint) from exc


async def start_site(runner: Any, host: str, port: int, *, what: str, hint: str, **kwargs: Any) -> int:
    """Start an aiohttp TCPSite for `runner` (set up already); returns the port bound (port 0 → the
    kernel's choice)."""
    from aiohttp import web

    site = web.TCPSite(runner, host, port, **kwargs)
    with binding(what, host, port, hint=hint):
        await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port
