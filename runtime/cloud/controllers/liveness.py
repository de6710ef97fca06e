"""The node controller's liveness half: session → Lease, disconnect → taint, autonomy window.

Between kedge's edge and cloud the cloud renews the node's Lease from session liveness (the edge sends
only keepalives); a KubeEdge edge renews its own through requests. When a session ends, the replica
that held it (annotation ``node.kedge.io/session-owner``, set with a resourceVersion-conditional
update) sets condition ``EdgeConnected=False`` and taint ``node.kedge.io/disconnected:NoSchedule``
(never a ``node.kubernetes.io/*`` key: the node-lifecycle controller owns those) and keeps renewing the
Lease for the node's autonomy window (annotation ``node.kedge.io/autonomy-window``, default 24 h), so
Ready stays as last reported and nothing is evicted. A reconnect removes the taint. One loop serves
every node — no task per edge — and writes each Lease at most every ``renew_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from runtime.cloud.controllers.world import World, meta
from runtime.cloud.hub_session import SessionInfo
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeConflict, KubeNotFound
from runtime.kube.resources import LEASES, NODES

log = logging.getLogger("kedge.cloud.nodecontroller")

ANN_OWNER = "node.kedge.io/session-owner"
ANN_AUTONOMY = "node.kedge.io/autonomy-window"
TAINT_KEY = "node.kedge.io/disconnected"
CONDITION = "EdgeConnected"
LEASE_NS = "kube-node-lease"


def now_rfc3339(micro: bool = False) -> str:
    t = dt.datetime.now(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


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


@dataclass
class NodeState:
    connected: bool
    peer_kind: str = "kedge"
    disconnected_at: float = 0.0  # wall clock
    mark_pending: bool = True  # owner/taint/condition still to be written
    next_renew: float = 0.0  # monotonic
    edge_renews_until: float = 0.0  # monotonic: a KubeEdge edge wrote its own lease recently


class NodeLiveness:
    """Owner annotation, EdgeConnected, disconnected taint and Lease renewal for the nodes this replica
    holds (connected here, or disconnected/orphaned and still within their autonomy window)."""

    def __init__(self, client: KubeClient, world: World, replica: str, *, renew_every: float = 10.0,
                 lease_seconds: int = 40, autonomy: float = 86400.0, tick: float = 1.0,
                 concurrency: int = 32) -> None:
        self.client, self.world, self.replica = client, world, replica
        self.renew_every, self.lease_seconds = renew_every, lease_seconds
        self.autonomy, self.tick, self.concurrency = autonomy, tick, concurrency
        self.nodes: dict[str, NodeState] = {}
        self.lease_writes = 0
        self.node_writes = 0
        self._leases: dict[str, dict[str, Any]] = {}

    # --- events ----------------------------------------------------------------------------------

    async def on_connect(self, info: SessionInfo) -> None:
        self.nodes[info.node] = NodeState(connected=True, peer_kind=info.peer_kind)

    async def on_disconnect(self, info: SessionInfo) -> None:
        st = self.nodes.get(info.node)
        if st is None or st.connected:
            self.nodes[info.node] = NodeState(connected=False, peer_kind=info.peer_kind,
                                              disconnected_at=time.time())

    def edge_renewed(self, node: str) -> None:
        """A KubeEdge edge wrote its own Lease: do not write it too while it keeps doing so."""
        st = self.nodes.get(node)
        if st is not None:
            st.edge_renews_until = time.monotonic() + 2 * self.renew_every

    def adopt(self, node: str, since: float) -> None:
        """Take over a dead replica's node (not connected here): renew for what is left of its window."""
        if node not in self.nodes:
            self.nodes[node] = NodeState(connected=False, disconnected_at=since)

    async def claim(self, node: str, dead: str) -> bool:
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
            since = time.time()
            for t in (obj.get("spec") or {}).get("taints") or []:
                if t.get("key") == TAINT_KEY and t.get("timeAdded"):
                    with contextlib.suppress(ValueError):
                        since = dt.datetime.strptime(t["timeAdded"][:19], "%Y-%m-%dT%H:%M:%S").replace(
                            tzinfo=dt.UTC).timestamp()
            self.adopt(node, since)
            return True
        return False

    def owned(self) -> list[str]:
        return sorted(self.nodes)

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.tick)

    async def step(self) -> None:
        now, wall = time.monotonic(), time.time()
        sem = asyncio.Semaphore(self.concurrency)
        jobs = []
        for node, st in list(self.nodes.items()):
            obj = self.world.nodes.get(node)
            if not st.connected:
                owner = meta(obj).get("annotations", {}).get(ANN_OWNER) if obj else None
                if owner not in (None, self.replica) and not st.mark_pending:
                    log.info("node %s: now held by replica %s; stop renewing", node, owner)
                    del self.nodes[node]
                    continue
                window = parse_window(meta(obj).get("annotations", {}).get(ANN_AUTONOMY) if obj else None,
                                      self.autonomy)
                if wall - st.disconnected_at > window:
                    log.warning("node %s: autonomy window (%.0fs) over; Kubernetes takes over", node, window)
                    del self.nodes[node]
                    continue
            jobs.append(self._one(node, st, now, sem))
        await asyncio.gather(*jobs)

    async def _one(self, node: str, st: NodeState, now: float, sem: asyncio.Semaphore) -> None:
        async with sem:
            try:  # the Lease first: Ready depends on it; the marks only describe the session
                edge_does_it = st.connected and (st.peer_kind != "kedge" or now < st.edge_renews_until)
                if not edge_does_it and now >= st.next_renew and node in self.world.nodes:
                    await self.renew_lease(node)
                    st.next_renew = now + self.renew_every
                if st.mark_pending:
                    st.mark_pending = not await self.mark(node, st.connected, st.disconnected_at)
            except KedgeError as exc:
                log.warning("node %s: %s", node, exc)

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
        now = now_rfc3339()
        cond = {"type": CONDITION, "status": want, "lastHeartbeatTime": now, "lastTransitionTime": now,
                "reason": "EdgeConnected" if connected else "EdgeDisconnected",
                "message": (f"edge connected to cloud replica {self.replica}" if connected else
                            f"edge session with cloud replica {self.replica} ended; autonomy window runs")}
        await self.client.patch(NODES, node, {"status": {"conditions": [cond]}}, type="strategic",
                                subresource="status")
        self.node_writes += 1

    async def renew_lease(self, node: str) -> None:
        lease = self._leases.get(node)
        now = now_rfc3339(micro=True)
        for _ in range(3):
            if lease is None:
                try:
                    lease = await self.client.get(LEASES, node, namespace=LEASE_NS)
                except KubeNotFound:
                    lease = await self._create_lease(node, now)
                    if lease is not None:
                        self._leases[node] = lease
                        return
                    continue
            spec = lease.setdefault("spec", {})
            spec.update(holderIdentity=spec.get("holderIdentity") or node, renewTime=now,
                        leaseDurationSeconds=spec.get("leaseDurationSeconds") or self.lease_seconds)
            try:
                self._leases[node] = await self.client.replace(LEASES, lease, namespace=LEASE_NS)
                self.lease_writes += 1
                return
            except KubeConflict:
                lease = None  # written by the edge or another replica: re-read
            except KubeNotFound:
                lease = None
                self._leases.pop(node, None)

    async def _create_lease(self, node: str, now: str) -> dict[str, Any] | None:
        n = self.world.nodes.get(node)
        body: dict[str, Any] = {
            "metadata": {"name": node, "namespace": LEASE_NS},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": self.lease_seconds, "renewTime": now},
        }
        if n is not None and meta(n).get("uid"):
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": meta(n)["uid"]}]
        try:
            created = await self.client.create(LEASES, body, namespace=LEASE_NS)
            self.lease_writes += 1
            return created
        except AlreadyExists:
            return None
