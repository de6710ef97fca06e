"""The event loop each long-running command runs on: `kedge cloud run`, `kedge apiserver` and `kedge
cloud tunnel-dnat` on uvloop, `kedge edge run` on asyncio's own loop.

design.md §3 prefers uvloop for its memory per idle TLS connection (CPython's TLS transport zero-fills a
256 KiB buffer per connection, uvloop's does not) and its faster handshakes: that is the cloud and the
API server, which hold one connection per edge. The edge holds one TLS connection to the cloud (and one
per open stream), while uvloop itself costs it 1.3-1.9 MB of RSS (its loop module and libuv) — more
than the buffers it saves there, and the edge has a 40 MB idle goal (issue 18, docs/benchmarks.md).
An edge with heavy device traffic can choose uvloop in edge.toml (`event_loop = "uvloop"`).
It lives in runtime/ (no import but asyncio) so the edge launcher, which never imports kubeedge_cli,
shares it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Loop = Literal["uvloop", "asyncio"]


def run(main: Coroutine[Any, Any, T], *, loop: Loop) -> T:
    """Run `main` to completion on a new event loop of the kind given (uvloop falls back to asyncio's
    loop where uvloop is not installed)."""
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
