"""Reports to the cloud on KubeEdge v1.23's wire, from the twin store's durable queue, in order.

``update`` of ``device/<ns>/<name>/twin/edge_updated`` (source ``twin``, group ``resource``) with
``{event_id, timestamp, twin: {<prop>: {actual, expected?, optional, metadata, actual_version, …}}}``
and ``device/<ns>/<name>/state/update`` whose content is a JSON string ``{event_id, timestamp,
device: {name, state, lastOnlineTime?}}`` (edgecore's state result; lastOnlineTime for online/ok).
Rows leave the store only once the cloud answered them "OK" (kedge's cloud and cloudcore both
answer reports) — or, for a peer that stays silent, once the session that carried them outlived the
ack timeout — so a restart or a link cut mid-flight never loses one (a resend keeps its event id and
versions, for the cloud to recognise); one batch per ``window`` seconds keeps a flapping sensor from
flooding the link.

Pace: the cloud admits a node's messages at a limited rate (kedge ``hub.rate_limit_qps`` 30/s, burst
60; edgecore paces itself at ``messageQPS`` 30), while 100 devices in 0.5 s windows make 200 reports/s.
So the uplink sends at most ``qps`` reports per second (a token bucket below the cloud's limit, which
leaves room for the node's other messages), takes from the store only what the pace lets it send now,
and waits for the cloud's answers before taking more (a cloud stricter than the pace slows it to its
own rate). A report not yet taken stays open while the link is up: later values of its property fold
into it (the store), so a busy link holds at most one report per device and property, and a value
reaches the cloud within one round of the devices, ≈ devices / qps + window — whatever the devices'
rate and however long they keep it up. Reports of an outage keep one row per window (the history);
after a reconnect they go first, at the same pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson

from runtime.edge.devices import twins as tw
from runtime.edge.devices.store import Fit, Report, TwinStore
from runtime.edge.link import Hub
from runtime.pace import TokenBucket
from runtime.protocol import Message, new_message

log = logging.getLogger("kedge.edge.devices")


def fit(budget: int) -> Fit:
    """How many of the oldest rows make at most ``budget`` messages, grouped as ``build`` groups them."""

    def count(rows: list[tuple[str, str]]) -> int:
        last: dict[str, set[str]] = {}  # device -> properties of its last message
        n = 0
        for i, (device, prop) in enumerate(rows):
            if prop == "":
                n += 1
            else:
                props = last.get(device)
                if props is None or prop in props:
                    n += 1
                    props = last[device] = set()
                props.add(prop)
            if n > budget:
                return i
        return len(rows)

    return count


def build(rows: list[Report], ts: int) -> list[Message]:
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
    def __init__(
        self,
        store: TwinStore,
        hub: Hub | None,
        window: float,
        ack_timeout: float = 10.0,
        *,
        qps: float = 20.0,
        burst: int = 20,
    ) -> None:
        self.store, self.hub, self.window, self.ack_timeout = store, hub, window, ack_timeout
        self.pace = TokenBucket(qps, burst)
        self.sent = 0
        self.resent = 0
        self.paced = 0  # times the uplink waited for its pace
        self.last_sent: float | None = None
        self._kick = asyncio.Event()

    def link_up_since(self) -> float | None:
        """Wall clock since which the link is up (the store holds reports open meanwhile), else None."""
        hub = self.hub
        if hub is None or not hub.connected:
            return None
        since = hub.status().get("since")
        return float(since) if isinstance(since, int | float) else None

    def kick(self) -> None:
        """Something was stored to report: wake the uplink — only while the link is up. Offline, the
        uplink looks again every second anyway, and a wake-up per report (a DMI mapper's 1000/s) cost
        the loop a pass and a wait_for task each for nothing (scripts/bench/dmi_loop.py)."""
        if self.hub is not None and self.hub.connected:
            self._kick.set()

    async def _deliver(self, hub: Hub, msgs: list[Message]) -> bool:
        """True once the cloud answered every report — or, for a peer that does not answer, once the
        session that carried them outlived the ack timeout (what a cut link loses is sent again)."""
        since = hub.status().get("since")
        answers = await asyncio.gather(
            *(hub.request(m, timeout=self.ack_timeout) for m in msgs), return_exceptions=True
        )
        if not any(isinstance(a, BaseException) for a in answers):
            return True
        return hub.connected and hub.status().get("since") == since

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
                budget = self.pace.available(loop.time())
                if budget == 0:
                    self.paced += 1
                    await self._pause(stop, self.pace.until_one(loop.time()))
                    continue
                rows = await self.store.take_reports(fit=fit(budget))
                if not rows:
                    break
                msgs = build(rows, int(time.time() * 1000))
                now = loop.time()
                for _ in msgs:
                    self.pace.take(now)
                if await self._deliver(hub, msgs):
                    self.sent += len(msgs)
                    await self.store.done_reports(rows[-1][0])
                    self.last_sent = loop.time()
                else:
                    self.resent += len(msgs)  # kept: the next pass sends them again
                    if not hub.connected:
                        break
                await self._pause(stop, self.window)  # coalescing happens while we wait

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
