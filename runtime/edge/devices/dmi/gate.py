"""What the edge holds for DMI before any mapper connects: the bound socket and the rate limit — no gRPC.

grpclib, h2, protobuf and the stubs cost the idle edge about 5 MB (docs/benchmarks.md); an edge with
DMI on and no mapper yet needs none of them. So ``Dmi`` binds the socket here (``listen``: 0600, or
0660 owned by ``dmi.group``) and ``knock`` waits, without accepting, until the first mapper connects;
only then is gRPC imported and grpclib's server started on the same socket, which accepts the waiting
connection from the backlog (the mapper sees a normal connect; its first call waits for the import,
well inside mapper-framework's 1 s deadline for MapperRegister).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path


def missing() -> list[str]:
    """The libraries DMI needs (the ``dmi`` extra) that are not installed — looked up, not imported."""
    return [name for name in ("grpclib", "google.protobuf") if importlib.util.find_spec(name) is None]


class RateLimit:
    """A token bucket: ``rate`` requests per second on average, ``burst`` at once.

    KubeEdge allows 1 request/s with a burst of 100 over all mappers, which one mapper with a few
    devices reporting every second already exceeds; kedge's default (2000/s, burst 2000) is twice
    what 100 devices at 10 Hz need (scripts/bench/dmi.py) and still bounds a runaway mapper."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = float(burst), clock()
        self.refused = 0

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False


def prepare_socket(path: Path) -> None:
    """Make room for the socket: its folder (0755 if new) and no stale socket file at ``path``.

    Anything else at ``path`` (a regular file, a folder) is left alone and the bind fails, naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(st.st_mode):
        path.unlink()


def group_id(group: str) -> int:
    """A group name or number → gid (ConfigError naming ``dmi.group`` when there is no such group)."""
    import grp

    from runtime.errors import ConfigError

    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"dmi.group = {group!r}: no such group", hint="a group name or gid") from None


def listen(path: Path, group: str = "", backlog: int = 100) -> socket.socket:
    """A listening unix socket at ``path``: mode 0600 (only the edge's user connects), or 0660 owned by
    ``group`` when one is given (mappers running as another user of that group)."""
    gid = group_id(group) if group else None
    prepare_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: never briefly open to others
    try:
        sock.bind(str(path))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.setblocking(False)
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    return sock


async def knock(sock: socket.socket, stop: asyncio.Event) -> bool:
    """Wait until a connection waits on the listening ``sock`` (not accepted yet) or ``stop``.

    True if one does."""
    loop = asyncio.get_running_loop()
    knocked = asyncio.Event()
    loop.add_reader(sock.fileno(), knocked.set)
    waits = [asyncio.ensure_future(knocked.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(sock.fileno())
        for w in waits:
            w.cancel()
    return not stop.is_set()
