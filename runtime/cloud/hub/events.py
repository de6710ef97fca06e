"""EdgeEvents: what CloudHub tells its subscribers about the edges (CloudHub's base, server.py).

Why a list per event and not one handler: the cloud controllers, the Device controller and tests
subscribe side by side on one hub, each to the events it needs, and may unsubscribe again. All
callbacks of an event run in subscription order on the node's reader; one that raises is logged
(once per kind, LogOnce) and the others still run — a controller's bug must not end an edge's session.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.cloud.hub.session import LogOnce, OnAck, OnMessage, SessionInfo
from runtime.protocol import Message
from runtime.protocol.delivery import Acked

OnSession = Callable[[SessionInfo], Awaitable[None]]


class EdgeEvents:
    """The callbacks per event (message, connect, disconnect, ack) and their fan-out. CloudHub is one:
    controllers call ``hub.subscribe``; the hub's sessions call the ``_tell_*`` methods."""

    def __init__(self, log: LogOnce) -> None:
        self._log = log
        self._on_message: list[OnMessage] = []
        self._on_connect: list[OnSession] = []
        self._on_disconnect: list[OnSession] = []
        self._on_ack: list[OnAck] = []

    def subscribe(
        self,
        *,
        on_message: OnMessage | None = None,
        on_connect: OnSession | None = None,
        on_disconnect: OnSession | None = None,
        on_ack: OnAck | None = None,
    ) -> Callable[[], None]:
        """Add callbacks (each controller subscribes its own; all are called, in subscription order).
        ``on_message(node, msg)`` gets every edge message except keepalives and acks, resource
        prefixed ``node/<node>/``; ``on_connect(info)`` every new session (the resync point);
        ``on_disconnect(info)`` when a node is left without a session; ``on_ack(node, Acked)`` for each
        reliable message the edge committed. Callbacks run on the node's reader: keep them short (a
        slow one delays that node only). Returns a function that unsubscribes."""
        pairs: list[tuple[list[Any], Any]] = [
            (self._on_message, on_message),
            (self._on_connect, on_connect),
            (self._on_disconnect, on_disconnect),
            (self._on_ack, on_ack),
        ]
        added = [(lst, cb) for lst, cb in pairs if cb is not None]
        for lst, cb in added:
            lst.append(cb)

        def unsubscribe() -> None:
            for lst, cb in added:
                if cb in lst:
                    lst.remove(cb)

        return unsubscribe

    async def _tell_message(self, node: str, msg: Message) -> None:
        if not self._on_message:
            self._log.warning(
                "unhandled", f"cloudhub: no subscriber for {msg.operation} {msg.resource}", time.monotonic()
            )
        for cb in list(self._on_message):
            try:
                await cb(node, msg)
            except Exception:
                self._log.exception(
                    f"handler:{msg.operation}",
                    f"edge {node}: handler failed for {msg.operation} {msg.resource}",
                )

    async def _tell_ack(self, node: str, ev: Acked) -> None:
        for cb in list(self._on_ack):
            try:
                await cb(node, ev)
            except Exception:
                self._log.exception("ack-handler", f"edge {node}: ack handler failed for {ev.key}")

    async def _tell_connect(self, info: SessionInfo) -> None:
        await self._session(self._on_connect, info)

    async def _tell_disconnect(self, info: SessionInfo) -> None:
        await self._session(self._on_disconnect, info)

    async def _session(self, cbs: list[OnSession], info: SessionInfo) -> None:
        for cb in list(cbs):
            try:
                await cb(info)
            except Exception:
                name = getattr(cb, "__name__", repr(cb))
                self._log.exception(
                    f"callback:{name}", f"cloudhub callback {name} failed for edge {info.node}"
                )
