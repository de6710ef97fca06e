"""Ready as last reported, for the edges this replica holds (design.md §5 "autonomy window").

A kedge edge re-sends only what changed, and its cloud renews the Lease for it; so when the node-lifecycle
controller set Ready=Unknown (reason NodeStatusUnknown) while the cloud lagged or was down, nothing would
ever set it back. This puts the edge's last reported Ready condition back — a status-subresource patch
conditional on the resourceVersion it was decided from — for every held kedge node whose Lease the cloud
renews. KubeEdge edges post their own status and are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runtime.cloud.controllers.world import World, rv_of
from runtime.cloud.hub_session import LogOnce
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeConflict, KubeNotFound
from runtime.kube.resources import NODES

log = logging.getLogger("kedge.cloud.readiness")


class Held(Protocol):
    peer_kind: str


class ReadyRestorer:
    """Every ``tick``: for held kedge nodes whose Ready the node-lifecycle controller made Unknown, patch
    back the last Ready their edge reported. ``held()`` maps node → its liveness state."""

    def __init__(
        self, client: KubeClient, world: World, held: Callable[[], Mapping[str, Held]], *, tick: float = 1.0
    ) -> None:
        self.client, self.world, self.held, self.tick = client, world, held, tick
        self.restored = 0
        self._tried: dict[str, str] = {}  # node -> resourceVersion already patched from
        self._log = LogOnce()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            done = 0
            for node in self.due():
                try:
                    done += await self.restore(node)
                except KedgeError as exc:
                    self._log.warning(
                        f"ready:{type(exc).__name__}", f"node {node}: ready: {exc}", time.monotonic()
                    )
            if done:  # one line per round, not one per node (design.md §3)
                log.info("Ready put back as last reported on %d node(s) marked Unknown", done)

    def due(self) -> list[str]:
        held = self.held()
        out = []
        for node in sorted(self.world.ready_unknown):
            st, obj = held.get(node), self.world.nodes.get(node)
            if st is None or st.peer_kind != "kedge" or obj is None or node not in self.world.last_ready:
                continue
            if self._tried.get(node) != rv_of(obj):
                out.append(node)
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
