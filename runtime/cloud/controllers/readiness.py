"""Ready as last reported, for the edges this replica holds (design.md §5 "autonomy window").

A kedge edge re-sends only what changed, and its cloud renews the Lease for it; so when the node-lifecycle
controller set Ready=Unknown (reason NodeStatusUnknown) while the cloud lagged or was down, nothing would
ever set it back. This puts the edge's last reported Ready condition back — a status-subresource patch
conditional on the resourceVersion it was decided from — for every held kedge node whose Lease the cloud
renews. KubeEdge edges post their own status and are left alone. A cloud that started after the report
(restart, takeover) has no memory of it: ``recall`` reads it back from the node's Lease, where the
renewals keep it (runtime/cloud/controllers/leases.py), once per node found Unknown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from runtime.cloud.controllers.world import World, rv_of
from runtime.cloud.hub.session import LogOnce
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeConflict, KubeNotFound
from runtime.kube.resources import NODES

log = logging.getLogger("kedge.cloud.readiness")


class Held(Protocol):
    peer_kind: str


class ReadyRestorer:
    """Every ``tick``: for held kedge nodes whose Ready the node-lifecycle controller made Unknown, patch
    back the last Ready their edge reported. ``held()`` maps node → its liveness state; ``recall(node)``
    seeds ``world.last_ready`` for a node this process has not seen report (True when it did)."""

    def __init__(
        self,
        client: KubeClient,
        world: World,
        held: Callable[[], Mapping[str, Held]],
        *,
        tick: float = 1.0,
        recall: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.client, self.world, self.held, self.tick, self.recall = client, world, held, tick, recall
        self.restored = 0
        self.recalled = 0
        self._tried: dict[str, str] = {}  # node -> resourceVersion already patched from
        self._asked: set[str] = set()  # nodes whose Lease was read for their last Ready (while Unknown)
        self._log = LogOnce(logger=log)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            for node in self.forgotten():
                await self._logged("recall", node, self._recall)
            done = 0
            for node in self.due():
                done += await self._logged("ready", node, self.restore)
            if done:  # one line per round, not one per node (design.md §3)
                log.info("Ready put back as last reported on %d node(s) marked Unknown", done)

    async def _logged(self, what: str, node: str, step: Callable[[str], Awaitable[bool]]) -> bool:
        try:
            return await step(node)
        except KedgeError as exc:
            self._log.warning(f"{what}:{type(exc).__name__}", f"node {node}: {what}: {exc}", time.monotonic())
            return False

    async def _recall(self, node: str) -> bool:
        """Read the node's Lease once while it stays Unknown (again only after a failed read)."""
        assert self.recall is not None
        self._asked.add(node)
        try:
            done = await self.recall(node)
        except KedgeError:
            self._asked.discard(node)
            raise
        self.recalled += done
        return done

    def _unknown_held(self) -> list[str]:
        """Held kedge nodes (known to the World) that the node-lifecycle controller made Unknown."""
        held = self.held()
        return [
            n
            for n in sorted(self.world.ready_unknown)
            if getattr(held.get(n), "peer_kind", None) == "kedge" and n in self.world.nodes
        ]

    def forgotten(self) -> list[str]:
        """Unknown held kedge nodes with no report in memory whose Lease was not read yet."""
        self._asked &= self.world.ready_unknown
        if self.recall is None:
            return []
        return [n for n in self._unknown_held() if n not in self.world.last_ready and n not in self._asked]

    def due(self) -> list[str]:
        out = [
            n
            for n in self._unknown_held()
            if n in self.world.last_ready and self._tried.get(n) != rv_of(self.world.nodes[n])
        ]
        self._tried = {n: rv for n, rv in self._tried.items() if n in self.world.ready_unknown}
        return out

    async def restore(self, node: str) -> bool:
        """One conditional patch; False when the Node changed meanwhile (decided again next tick)."""
        obj, last = self.world.nodes.get(node), self.world.last_ready.get(node)
        if obj is None or last is None:  # deleted meanwhile
            return False
        rv = rv_of(obj)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cond: dict[str, Any] = {**last, "lastHeartbeatTime": now, "lastTransitionTime": now}
        patch = {"metadata": {"resourceVersion": rv}, "status": {"conditions": [cond]}}
        try:
            await self.client.patch(NODES, node, patch, type="strategic", subresource="status")
        except (KubeConflict, KubeNotFound):
            self._tried[node] = rv
            return False
        self._tried[node] = rv
        self.restored += 1
        return True
