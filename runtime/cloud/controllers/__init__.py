"""runtime/cloud/controllers: what the cloud does for its edge nodes (design.md §4 and §5).

    __init__.py   CloudControllers       the parts below wired to one hub and one API client
    edgectl.py    EdgeController         watches → world → each node's difference, reliable, resync
    world.py      World                  what each node should hold, who may read what (sans I/O)
    refs.py       pod_refs()             what a pod references (the node authorizer's reading)
    requests.py   EdgeRequests           the edge's ``meta`` requests answered as the node authorizer
    liveness.py   NodeLiveness           session → Lease, disconnect → taint, autonomy window
    leases.py     NodeLeases             the Lease writes of held nodes, last Ready carried on them
    readiness.py  ReadyRestorer          Ready as last reported after the node-lifecycle's Unknown
    replicas.py   Replicas               one Lease per cloud replica; takeover of a dead one's nodes
    syncstore.py  SyncStore              persisted ack state in ObjectSync CRs (also the devices')

runtime/cloud/cloudcore.py builds ``CloudControllers(client, hub, ...)`` and runs ``run()``, which
subscribes to the hub. Down: a watch event → World.apply → the touched nodes → EdgeController.reconcile
→ ``hub.send(reliable_key=uid)`` → the edge's ack → AckState → SyncStore. Up: the hub's on_message →
(once the watches have listed) EdgeRequests.handle → Kubernetes → the answer through ``hub.send``.
A session → NodeLiveness (Lease, taint) and EdgeController.resync. A restart (same replica identity,
replicas.default_identity) resumes the nodes its predecessor held once the Nodes are listed, oldest
Lease first, without waiting for its own replica Lease to expire. Tests build ``CloudControllers``
directly with short timings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from runtime.cloud.controllers.edgectl import EdgeController
from runtime.cloud.controllers.leases import LEASE_NS
from runtime.cloud.controllers.liveness import ANN_OWNER, NodeLiveness, disconnected_since
from runtime.cloud.controllers.readiness import ReadyRestorer
from runtime.cloud.controllers.replicas import Replicas
from runtime.cloud.controllers.requests import EdgeRequests
from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.controllers.world import World, meta
from runtime.cloud.hub.server import CloudHub
from runtime.cloud.hub.session import SessionInfo
from runtime.cloud.lease_gate import LeaseGate
from runtime.cloud.tunnel.endpoint import KubeletEndpoints
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import LEASES
from runtime.protocol import Message
from runtime.tasks import supervise

log = logging.getLogger("kedge.cloud.controllers")

__all__ = ["CloudControllers"]


class CloudControllers:
    """Everything the cloud runs for its edges, wired to one hub and one API client."""

    def __init__(
        self,
        client: KubeClient,
        hub: CloudHub,
        *,
        namespace: str = "kubeedge",
        replica: str | None = None,
        lease_renew: float = 10.0,
        lease_seconds: int = 40,
        autonomy: float = 86400.0,
        replica_duration: float = 15.0,
        replica_renew: float = 5.0,
        flush_every: float = 1.0,
        tick: float = 1.0,
        persist: bool = True,
        admit_lag: float = 10.0,
        endpoints: KubeletEndpoints | None = None,
    ) -> None:
        self.client, self.hub, self.namespace = client, hub, namespace
        self.endpoints = endpoints
        self.world = World()
        self.store = SyncStore(client, namespace, flush_every=flush_every) if persist else None
        self.replicas = Replicas(
            client, namespace, replica, duration=replica_duration, renew_every=replica_renew
        )
        self.liveness = NodeLiveness(
            client,
            self.world,
            self.replicas.identity,
            renew_every=lease_renew,
            lease_seconds=lease_seconds,
            autonomy=autonomy,
            tick=tick,
        )
        self.ready = ReadyRestorer(
            client, self.world, lambda: self.liveness.nodes, tick=tick, recall=self.liveness.leases.recall
        )
        # renewals win over new work: sessions and ack-state flushes wait while renewals lag
        self.admission = LeaseGate(self.liveness.lag_now, threshold=admit_lag)
        hub.admit = self.admission
        if self.store is not None:
            self.store.gate = self.admission
        self.edge: EdgeController | None = None
        self.requests = EdgeRequests(
            client,
            self.world,
            self._respond,
            lease_min_write=lease_renew,
            on_lease=self.liveness.edge_renewed,
            on_register=self.liveness.registration_marks,
            endpoints=endpoints,
        )
        self.started = time.time()

    def synced(self) -> bool:
        """The edge controller has listed everything once (readiness check "controllers")."""
        return bool(self.edge and self.edge.synced.is_set())

    @property
    def identity(self) -> str:
        return self.replicas.identity

    async def _respond(self, node: str, msg: Message) -> None:
        await self.hub.send(node, msg)

    async def run(self) -> None:
        from runtime.protocol.delivery import AckState

        acks = AckState()
        if self.store is not None:
            try:
                acks = await self.store.load()
            except KubeNotFound:
                log.warning(
                    "ObjectSync CRD (reliablesyncs.kubeedge.io) not installed: ack state is kept "
                    "in memory only, a restarted cloud resends everything (`kedge init` installs it)"
                )
                self.store = None
        self.edge = EdgeController(self.client, self.hub, self.world, acks, self.store)
        self.hub.subscribe(
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_ack=self.edge.on_ack,
        )
        for info in self.hub.sessions():  # edges that connected before we subscribed
            await self.liveness.on_connect(info)
        tasks = [
            asyncio.create_task(self.edge.run(), name="edge-controller"),
            asyncio.create_task(self._liveness(), name="node-liveness"),
            asyncio.create_task(self.ready.run(), name="node-ready"),
            asyncio.create_task(self.replicas.run(self._take_over), name="replica-lease"),
        ]
        await supervise(tasks, until=asyncio.FIRST_COMPLETED)

    async def _liveness(self) -> None:
        """The renewals, and once the Nodes are listed, the nodes our predecessor held (a restart)."""
        resume = asyncio.create_task(self._resume(), name="resume-nodes")
        try:
            await self.liveness.run()
        finally:
            resume.cancel()

    async def _resume(self) -> None:
        """Hold the nodes annotated with our identity that are not connected here: a restarted process
        is its predecessor (same identity), so their Leases are renewed at once, oldest first, instead
        of after the old replica Lease expires. Their disconnect marks wait one replica Lease duration,
        the time a peer would have waited before taking them over: most edges reconnect before."""
        assert self.edge is not None
        await self.edge.synced.wait()
        mine = [
            (name, node)
            for name, node in list(self.world.nodes.items())
            if (meta(node).get("annotations") or {}).get(ANN_OWNER) == self.identity
            and not self.hub.connected(name)
        ]
        if not mine:
            return
        renewed = await self._lease_times()
        mark_after = time.time() + self.replicas.duration
        for name, node in mine:
            self.liveness.adopt(name, disconnected_since(node), renewed.get(name), mark_after)
        log.info("%d node(s) resumed from this replica's previous run", len(mine))

    async def _lease_times(self) -> dict[str, float]:
        """Each node Lease's renewTime (wall clock), from one list; empty when the list fails."""
        try:
            found = await self.client.list(LEASES, namespace=LEASE_NS)
        except Exception as exc:  # the schedule falls back to arrival order
            log.warning("node leases not listed: %s", exc)
            return {}
        out: dict[str, float] = {}
        for lease in found.items:
            try:
                out[meta(lease)["name"]] = dt.datetime.fromisoformat(lease["spec"]["renewTime"]).timestamp()
            except (KeyError, TypeError, ValueError):
                continue
        return out

    async def _on_message(self, node: str, msg: Message) -> None:
        assert self.edge is not None
        if not self.edge.synced.is_set():
            await asyncio.wait_for(self.edge.synced.wait(), 60)
        await self.requests.handle(node, msg)

    async def _on_connect(self, info: SessionInfo) -> None:
        if info.key_hash:
            self.requests.key_hashes[info.node] = info.key_hash
        await self.liveness.on_connect(info)
        assert self.edge is not None
        await self.edge.on_connect(info)
        if self.endpoints is not None:  # the node may come from another replica: its endpoint is ours now
            try:
                await self.endpoints.ensure(self.client, info.node, self.world.nodes.get(info.node))
            except Exception as exc:
                log.warning("node %s: kubelet endpoint not written: %s", info.node, exc)

    async def _on_disconnect(self, info: SessionInfo) -> None:
        await self.liveness.on_disconnect(info)
        assert self.edge is not None
        await self.edge.on_disconnect(info)

    async def _take_over(self, dead: str, concurrency: int = 16) -> None:
        """Claim the dead replica's nodes that are not connected here, several at once: each claim is a
        Node read and a conditional write, and a node's Lease is not renewed until it is claimed (or
        its edge reconnects): one after the other, 1,000 claims at tens of milliseconds each on a busy
        API server would leave the last ones unrenewed near the 40 s node-lifecycle grace."""
        orphans = [
            name
            for name, node in list(self.world.nodes.items())
            if (meta(node).get("annotations") or {}).get(ANN_OWNER) == dead
        ]
        slots = asyncio.Semaphore(concurrency)
        renewed = await self._lease_times() if orphans else {}

        async def claim(name: str) -> bool:
            async with slots:
                return not self.hub.connected(name) and await self.liveness.claim(
                    name, dead, renewed.get(name)
                )

        claimed = await asyncio.gather(*(claim(name) for name in orphans))
        if any(claimed):
            log.info("%d node(s) taken over from dead replica %s", sum(claimed), dead)

    def status(self) -> dict[str, Any]:
        """The cloud-role part of `kedge status`: edges, acks, replica."""
        edges = [
            {
                "name": s.node,
                "since": s.since,
                "lastKeepalive": getattr(s, "last_keepalive", None),
                "lastContact": s.last_contact,
                "replica": self.identity,
                "peer": "kedge" if s.peer_kind == "kedge" else "KubeEdge",
                "version": s.version,
                "epoch": s.epoch,
                "remote": s.remote,
                "pendingAcks": s.pending_acks,
            }
            for s in self.hub.sessions()
        ]
        return {
            "replica": self.identity,
            "leader": self.replicas.is_leader(),
            "replicas": self.replicas.live,
            "connectedEdges": len(edges),
            "edges": edges,
            "pendingAcks": self.hub.pending_acks(),
            "heldNodes": self.liveness.owned(),
            "synced": self.synced(),
            "ackStateBacklog": self.store.backlog if self.store else 0,
            "counters": {  # monotonic, for rates (benchmarks, dashboards)
                "messagesSent": self.edge.messages_sent if self.edge else 0,
                "requestsAnswered": self.requests.answered,
                "apiWrites": (
                    self.requests.writes
                    + self.liveness.lease_writes
                    + self.liveness.node_writes
                    + (self.store.writes if self.store else 0)
                ),
                "leaseWrites": self.liveness.lease_writes,
                "nodeWrites": self.liveness.node_writes,
                "leaseRenewLagSeconds": round(self.liveness.renew_lag, 3),
                "leaseRenewLagMaxSeconds": round(self.liveness.renew_lag_max, 3),
                "readyRestored": self.ready.restored,
                "readyRecalled": self.ready.recalled,
                "admissionsDelayed": self.admission.delayed,
                "admissionsWaiting": self.admission.waiting,
                "admissionHeldSeconds": round(self.admission.held_seconds, 3),
                "ackStateWrites": self.store.writes if self.store else 0,
                "requestWrites": self.requests.writes,
            },
        }
