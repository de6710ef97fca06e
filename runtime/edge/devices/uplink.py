"""Reports to the cloud on KubeEdge v1.23's wire, from the twin store's durable queue, in order.

``update`` of ``device/<ns>/<name>/twin/edge_updated`` (source ``twin``, group ``resource``) with
``{event_id, timestamp, twin: {<prop>: {actual, expected?, optional, metadata, actual_version, …}}}``
and ``device/<ns>/<name>/state/update`` whose content is a JSON string ``{event_id, timestamp,
device: {name, state, lastOnlineTime?}}`` (edgecore's state result; lastOnlineTime for online/ok).
Rows leave the store only after the hub took them (written to the socket, or to its durable outbox
if the link fell meanwhile), so nothing is lost across a restart; one batch per ``window`` seconds
keeps a flapping sensor from flooding the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import orjson

from runtime.edge.devices import twins as tw
from runtime.edge.devices.store import TwinStore
from runtime.protocol import Message, new_message

log = logging.getLogger("kedge.edge.devices")


class Hub(Protocol):
    @property
    def connected(self) -> bool: ...

    async def send(self, msg: Message) -> None: ...


def build(rows: list[tuple[int, str, str, str, Any, int]], ts: int) -> list[Message]:
    """Group rows per device into messages; a property repeats only in a later message (order kept)."""
    per_device: dict[str, list[dict[str, Any]]] = {}
    out: list[Message] = []
    for _, device, prop, event_id, body, coalesced in rows:
        if prop == "":  # a state report
            out.append(new_message("twin", "resource", "update", f"device/{device}/state/update",
                                   orjson.dumps(body).decode()))  # fmt: skip
            continue
        msgs = per_device.setdefault(device, [])
        if not msgs or prop in msgs[-1]["twin"]:
            msgs.append({"event_id": event_id, "timestamp": ts, "twin": {}})
        msgs[-1]["twin"][prop] = tw.cloud_twin(body, coalesced)
    for device, msgs in per_device.items():
        for content in msgs:
            out.append(
                new_message("twin", "resource", "update", f"device/{device}/twin/edge_updated", content)
            )
    return out


class Uplink:
    def __init__(self, store: TwinStore, hub: Hub | None, window: float) -> None:
        self.store, self.hub, self.window = store, hub, window
        self.sent = 0
        self.last_sent: float | None = None
        self._kick = asyncio.Event()

    def kick(self) -> None:
        self._kick.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), 1.0)
            self._kick.clear()
            hub = self.hub
            if hub is None or not hub.connected or self.store.pending_reports == 0:
                continue
            while not stop.is_set():
                rows = await self.store.take_reports()
                if not rows:
                    break
                for msg in build(rows, int(time.time() * 1000)):
                    await hub.send(msg)
                    self.sent += 1
                await self.store.done_reports(rows[-1][0])
                self.last_sent = loop.time()
                with contextlib.suppress(TimeoutError):  # coalescing happens while we wait
                    await asyncio.wait_for(stop.wait(), self.window)
