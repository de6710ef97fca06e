"""The node controller's liveness half: session → Lease, disconnect → taint, autonomy window.

Between kedge's edge and cloud the cloud renews the node's Lease from session liveness (the edge sends
only keepalives); a KubeEdge edge renews its own through requests. When a session ends, the replica
that held it (annotation ``node.kedge.io/session-owner``, set with a resourceVersion-conditional
update) sets condition ``EdgeConnected=False`` and taint ``node.kedge.io/disconnected:NoSchedule``
(never a ``node.kubernetes.io/*`` key: the node-lifecycle controller owns those) and keeps renewing the
Lease for the node's autonomy window (annotation ``node.kedge.io/autonomy-window``, default 24 h), so
Ready stays as last reported and nothing is evicted. A reconnect removes the taint. One schedule serves
every node — no task per edge — and writes each Lease at most every ``renew_every`` seconds, spread
evenly over that period, through a few keep-alive connections (runtime/cloud/controllers/leases.py,
which also keeps the edge's last reported Ready on the Lease for a cloud that restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import heapq
import itertools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from runtime.cloud.controllers.leases import LEASE_NS as LEASE_NS  # re-exported for tests
from runtime.cloud.controllers.leases import LEASE_PATH as LEASE_PATH
from runtime.cloud.controllers.leases import NodeLeases, now_rfc3339
from runtime.cloud.controllers.world import World, meta
from runtime.cloud.hub.session import LogOnce, SessionInfo
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeConflict, KubeNotFound
from runtime.kube.resources import NODES
from runtime.pace import TokenBucket

log = logging.getLogger("kedge.cloud.nodecontroller")

ANN_OWNER = "node.kedge.io/session-owner"
ANN_AUTONOMY = "node.kedge.io/autonomy-window"
TAINT_KEY = "node.kedge.io/disconnected"
CONDITION = "EdgeConnected"
PACE_SLACK = 1.25  # renewals go out at most this much faster than N / renew_every (bursts spread)


def parse_window(text: Any, default: float) -> float:
    """``86400``, ``"24h"``, ``"90m"``, ``"30s"``, ``"1h30m"`` → seconds; anything else → default."""
    if isinstance(text, int | float):
        return float(text)
    s = str(text or "").strip()
    if not s:
        return default
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        return default
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)


def disconnected_since(obj: dict[str, Any]) -> float:
    """When the disconnected taint was added to the Node (wall clock), else now."""
    for t in (obj.get("spec") or {}).get("taints") or []:
        if t.get("key") == TAINT_KEY and t.get("timeAdded"):
            with contextlib.suppress(ValueError):  # RFC 3339, "Z" included
                return dt.datetime.fromisoformat(t["timeAdded"]).timestamp()
    return time.time()


@dataclass(slots=True)
class NodeState:
    connected: bool
    peer_kind: str = "kedge"
    disconnected_at: float = 0.0  # wall clock
    mark_pending: bool = True  # owner/taint/condition still to be written
    edge_renews_until: float = 0.0  # monotonic: a KubeEdge edge wrote its own lease recently
    seq: int = 0  # which entry of the renewal schedule is this node's current one
    mark_after: float = 0.0  # wall clock: no disconnect mark before (a resumed node's edge may come back)


class NodeLiveness:
    """Owner annotation, EdgeConnected, disconnected taint and Lease renewal for the nodes this replica
    holds (connected here, or disconnected/orphaned and still within their autonomy window).

    Renewals: one schedule (a heap of due times) for every held node; a dispatcher hands due renewals,
    paced to at most ``PACE_SLACK * N / renew_every`` per second so a burst of connects spreads over
    the period, to ``concurrency`` workers — the bound on API writes in flight. Session marks go to the
    same workers only while no renewal is due: after a cloud restart every reconnecting node needs
    both, and a mark (two Node writes) can wait where a Lease past the node-lifecycle grace cannot.
    Each Lease is next due ``renew_every`` after its write started, so no Lease is written more often
    than that."""

    def __init__(
        self,
        client: KubeClient,
        world: World,
        replica: str,
        *,
        renew_every: float = 10.0,
        lease_seconds: int = 40,
        autonomy: float = 86400.0,
        tick: float = 1.0,
        concurrency: int = 8,
    ) -> None:
        self.client, self.world, self.replica = client, world, replica
        self.renew_every, self.lease_seconds = renew_every, lease_seconds
        self.autonomy, self.tick, self.concurrency = autonomy, tick, concurrency
        self.nodes: dict[str, NodeState] = {}
        self.leases = NodeLeases(client, world, lease_seconds=lease_seconds)
        self.node_writes = 0
        self.renew_lag = 0.0  # seconds the last dispatched renewal was overdue (0 when keeping up)
        self.renew_lag_max = 0.0  # the most overdue one since start
        self._due: list[tuple[float, int, str]] = []  # (monotonic due, seq, node); stale seqs skipped
        self._seq = itertools.count(1)
        self._offline: set[str] = set()  # held but not connected: autonomy window and owner checks
        self._unmarked: set[str] = set()  # session marks still to be written
        self._marks: dict[str, None] = {}  # marks ready to write, in order: sent when no renewal is due
        self._pace = TokenBucket(1.0, max(1, concurrency))
        self._log = LogOnce(logger=log)

    @property
    def lease_writes(self) -> int:
        return self.leases.writes

    # --- events ----------------------------------------------------------------------------------

    async def on_connect(self, info: SessionInfo) -> None:
        self._hold(info.node, NodeState(connected=True, peer_kind=info.peer_kind))

    async def on_disconnect(self, info: SessionInfo) -> None:
        st = self.nodes.get(info.node)
        if st is None or st.connected:
            self._hold(
                info.node, NodeState(connected=False, peer_kind=info.peer_kind, disconnected_at=time.time())
            )

    def edge_renewed(self, node: str) -> None:
        """A KubeEdge edge wrote its own Lease: do not write it too while it keeps doing so."""
        st = self.nodes.get(node)
        if st is not None:
            st.edge_renews_until = time.monotonic() + 2 * self.renew_every

    def adopt(self, node: str, since: float, renewed: float | None = None, mark_after: float = 0.0) -> None:
        """Hold a node not connected here (a dead replica's, or our predecessor's after a restart): renew
        for what is left of its window. ``renewed`` (wall clock, its Lease's renewTime) places it in the
        schedule by age, oldest first; ``mark_after`` defers its disconnect mark."""
        if node not in self.nodes:
            st = NodeState(connected=False, disconnected_at=since, mark_after=mark_after)
            self._hold(node, st, self._due_for(renewed))

    def _due_for(self, renewed: float | None) -> float:
        """When a Lease last written at ``renewed`` (wall clock) is due, on the monotonic clock: one period
        after that write (overdue when it waited out a restart), but neither earlier than a whole Lease
        duration ago nor later than one period ahead (a clock skew must not starve or stall it)."""
        now = time.monotonic()
        if renewed is None:
            return now
        due = now - (time.time() - renewed) + self.renew_every
        return min(now + self.renew_every, max(due, now - self.lease_seconds))

    def _hold(self, node: str, st: NodeState, due: float | None = None) -> None:
        old = self.nodes.get(node)
        self.nodes[node] = st
        (self._offline.discard if st.connected else self._offline.add)(node)
        self._unmarked.add(node)
        if old is not None:  # keep its place in the schedule
            st.seq = old.seq
        else:  # a new node's Lease is due at once, or by its age (paced with the others)
            self._schedule(node, st, time.monotonic() if due is None else due)

    def _drop(self, node: str) -> None:
        self.nodes.pop(node, None)
        self.leases.forget(node)
        self._offline.discard(node)
        self._unmarked.discard(node)
        self._marks.pop(node, None)

    def _schedule(self, node: str, st: NodeState, at: float) -> None:
        st.seq = next(self._seq)
        heapq.heappush(self._due, (at, st.seq, node))

    async def claim(self, node: str, dead: str, renewed: float | None = None) -> bool:
        """Make this replica the owner of ``node`` if ``dead`` still is (resourceVersion-conditional)."""
        for _ in range(5):
            try:
                obj = await self.client.get(NODES, node)
            except KubeNotFound:
                return False
            ann = obj.setdefault("metadata", {}).setdefault("annotations", {})
            if ann.get(ANN_OWNER) != dead:
                return False
            ann[ANN_OWNER] = self.replica
            try:
                await self.client.replace(NODES, obj)
                self.node_writes += 1
            except KubeConflict:
                continue
            self.adopt(node, disconnected_since(obj), renewed)
            return True
        return False

    def owned(self) -> list[str]:
        return sorted(self.nodes)

    def registration_marks(self, body: dict[str, Any]) -> None:
        """Put this replica's session marks (owner annotation, EdgeConnected=True) into a Node the edge
        registers through us, so that a first connect costs the create and no further Node write."""
        m = body.setdefault("metadata", {})
        m["annotations"] = {**(m.get("annotations") or {}), ANN_OWNER: self.replica}
        status = body.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != CONDITION]
        status["conditions"] = [*conds, self._condition_for(True)]

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        self.leases.open(self.concurrency)
        jobs: asyncio.Queue[tuple[str, str]] = asyncio.Queue(self.concurrency)
        workers = [
            asyncio.create_task(self._worker(jobs), name=f"lease-renewal-{i}")
            for i in range(self.concurrency)
        ]
        last = -self.tick
        try:
            while True:
                now = time.monotonic()
                if now - last >= self.tick:
                    last = now
                    self._marks.update(dict.fromkeys(self._housekeep(time.time())))
                node = self._pop_due(now)
                if node is None:
                    if self._marks:  # renewals first: after a restart every node has both to do
                        marked = next(iter(self._marks))
                        del self._marks[marked]
                        await jobs.put(("mark", marked))
                        continue
                    nxt = self._due[0][0] if self._due else now + self.tick
                    await asyncio.sleep(min(max(nxt - now, 0.005), self.tick, 0.2))
                    continue
                self._pace.rate = max(1.0, len(self.nodes) / self.renew_every * PACE_SLACK)
                wait = self._pace.take(now)
                if wait > 0:
                    await asyncio.sleep(wait)
                await jobs.put(("lease", node))
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.leases.close()

    def lag_now(self) -> float:
        """How overdue the most overdue renewal is right now (0 when keeping up)."""
        return max(0.0, time.monotonic() - self._due[0][0]) if self._due else 0.0

    def _pop_due(self, now: float) -> str | None:
        """The most overdue node whose renewal is due, or None."""
        while self._due:
            at, seq, node = self._due[0]
            st = self.nodes.get(node)
            if st is None or st.seq != seq:
                heapq.heappop(self._due)
                continue
            if at > now:
                return None
            heapq.heappop(self._due)
            self.renew_lag = now - at
            self.renew_lag_max = max(self.renew_lag_max, self.renew_lag)
            return node  # the worker schedules the next renewal when it starts this one
        return None

    def _housekeep(self, wall: float) -> list[str]:
        """Drop offline nodes another replica now holds or whose autonomy window is over; return the
        nodes whose session marks can be written now (their Node is known, or they are offline)."""
        for node in list(self._offline):
            st, obj = self.nodes[node], self.world.nodes.get(node)
            ann = meta(obj).get("annotations", {}) if obj else {}
            owner = ann.get(ANN_OWNER)
            if owner not in (None, self.replica) and not st.mark_pending:
                log.info("node %s: now held by replica %s; stop renewing", node, owner)
                self._drop(node)
                continue
            window = parse_window(ann.get(ANN_AUTONOMY), self.autonomy)
            if wall - st.disconnected_at > window:
                log.warning("node %s: autonomy window (%.0fs) over; Kubernetes takes over", node, window)
                self._drop(node)
        ready = [
            n
            for n in self._unmarked
            if (n in self.world.nodes or n in self._offline) and self.nodes[n].mark_after <= wall
        ]
        self._unmarked.difference_update(ready)
        return ready

    async def _worker(self, jobs: asyncio.Queue[tuple[str, str]]) -> None:
        while True:
            kind, node = await jobs.get()
            st = self.nodes.get(node)
            if st is None:
                continue
            try:
                if kind == "lease":
                    await self._renew(node, st)
                elif st.mark_pending:
                    st.mark_pending = not await self.mark(node, st.connected, st.disconnected_at)
                    if st.mark_pending and self.nodes.get(node) is st:
                        self._unmarked.add(node)
            except KedgeError as exc:
                if kind == "mark" and self.nodes.get(node) is st:
                    self._unmarked.add(node)
                self._log.warning(
                    f"{kind}:{type(exc).__name__}", f"node {node}: {kind}: {exc}", time.monotonic()
                )

    async def _renew(self, node: str, st: NodeState) -> None:
        """Write the Lease unless the edge does; the next write is due one period after this one."""
        now = time.monotonic()
        registered = node in self.world.nodes
        self._schedule(node, st, now + (self.renew_every if registered else self.tick))
        if not registered or (st.connected and (st.peer_kind != "kedge" or now < st.edge_renews_until)):
            return  # not registered yet (try again soon), or the edge renews its own Lease through us
        await self.leases.renew(node)

    # --- writes ----------------------------------------------------------------------------------

    async def mark(self, node: str, connected: bool, since: float = 0.0) -> bool:
        """Owner annotation + taint (one conditional update) and the EdgeConnected condition. False when
        the Node is not there yet (registration comes after the session opens): retried next tick."""
        cached = self.world.nodes.get(node)
        for attempt in range(5):
            if attempt == 0 and cached is not None:  # the watch's copy: a stale one just costs a retry
                obj = copy.deepcopy(cached)
            else:
                try:
                    obj = await self.client.get(NODES, node)
                except KubeNotFound:
                    return False
            m = obj.setdefault("metadata", {})
            ann = m.setdefault("annotations", {})
            owner = ann.get(ANN_OWNER)
            if not connected and owner not in (None, self.replica):
                return True  # another replica holds the session now
            spec = obj.setdefault("spec", {})
            taints = [t for t in (spec.get("taints") or []) if t.get("key") != TAINT_KEY]
            if not connected:
                when = dt.datetime.fromtimestamp(since or time.time(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                taints.append({"key": TAINT_KEY, "effect": "NoSchedule", "timeAdded": when})
            changed = owner != self.replica or taints != (obj["spec"].get("taints") or [])
            if changed:
                ann[ANN_OWNER] = self.replica
                if taints:
                    obj["spec"]["taints"] = taints
                else:
                    obj["spec"].pop("taints", None)
                try:
                    obj = await self.client.replace(NODES, obj)  # resourceVersion-conditional
                    self.node_writes += 1
                except KubeConflict:
                    continue
            break
        else:
            return False
        await self._condition(node, obj, connected)
        return True

    async def _condition(self, node: str, obj: dict[str, Any], connected: bool) -> None:
        want = "True" if connected else "False"
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c.get("type") == CONDITION and c.get("status") == want:
                return
        await self.client.patch(
            NODES,
            node,
            {"status": {"conditions": [self._condition_for(connected)]}},
            type="strategic",
            subresource="status",
        )
        self.node_writes += 1

    def _condition_for(self, connected: bool) -> dict[str, str]:
        now = now_rfc3339()
        return {
            "type": CONDITION,
            "status": "True" if connected else "False",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": "EdgeConnected" if connected else "EdgeDisconnected",
            "message": (
                f"edge connected to cloud replica {self.replica}"
                if connected
                else f"edge session with cloud replica {self.replica} ended; autonomy window runs"
            ),
        }
