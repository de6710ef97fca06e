"""The event loop the long-running commands (`kedge cloud run`, `kedge apiserver`, `kedge edge run`) run on.

uvloop where it is installed (design.md §3: far less memory per idle TLS connection than asyncio's
transport, faster handshakes), asyncio's own loop otherwise; one place so every role gets the same.
It lives in runtime/ (no import but asyncio) so the edge launcher, which never imports kubeedge_cli,
shares it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return asyncio.run(main)
    return uvloop.run(main)
