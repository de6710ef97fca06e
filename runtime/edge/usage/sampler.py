"""UsageSampler: one sampling loop for the node and every container of its pods (issue 20).

Why not Docker's stats API: it streams per container, or answers a one-shot request only after
sampling for about a second, and the engine pays for each. Here each interval costs one engine call
(GET /containers/json, the node's running containers and their labels) and one thread that reads a
few cgroup files per container (cgroups.py). CPU rates come from the previous sample of the same
container (a container seen for the first time: its CPU time over its lifetime so far).

The report (``update null/nodeusage/<node>``, source edged, group resource — a kedge extension a
KubeEdge cloud never receives: it goes only to a kedge peer) is small and bounded: at most
MAX_CONTAINERS containers, numbers only.

    {"time": ms, "window": ms, "ip": the node's InternalIP,
     "node": {"cpu": ns, "cpuRate": nanocores, "memory": bytes},
     "pods": [{"namespace", "name", "uid",
               "containers": [{"name", "start": unix s, "cpu": ns, "cpuRate": nanocores, "memory": bytes}]}]}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from runtime.edge.engine import engine_get
from runtime.edge.usage.cgroups import CgroupReader, Reading
from runtime.protocol import GROUP_RESOURCE, OP_UPDATE, SRC_EDGED, Message, new_message
from runtime.protocol.resource import RT_NODEUSAGE

log = logging.getLogger("kedge.edge.usage")

MAX_CONTAINERS = 500
FIRST_WINDOW = 2.0  # seconds between the first two samples: a rate is known soon after start
LABELS = (
    "io.kedge.pod.namespace",
    "io.kedge.pod.name",
    "io.kedge.pod.uid",
    "io.kedge.container.name",
    "io.kedge.container.kind",
)
Lister = Callable[[], Awaitable[list[dict[str, Any]]]]


def engine_lister(docker_host: str, node: str) -> Lister:
    """One GET /containers/json of the node's running pod containers (no docker SDK)."""
    filters = json.dumps({"label": ["io.kedge.managed=true", f"io.kedge.node={node}"]})

    async def lister() -> list[dict[str, Any]]:
        found = await engine_get(docker_host, "/containers/json?filters=" + quote(filters), timeout=5.0)
        return list(found) if isinstance(found, list) else []

    return lister


def usage_message(node: str, report: dict[str, Any]) -> Message:
    return new_message(SRC_EDGED, GROUP_RESOURCE, OP_UPDATE, f"null/{RT_NODEUSAGE}/{node}", report)


def _rate(now: Reading, t: float, before: tuple[float, int] | None, since: float) -> int:
    if before is not None and t > before[0] and now.cpu_ns >= before[1]:
        return int((now.cpu_ns - before[1]) / (t - before[0]))
    return int(now.cpu_ns / (t - since)) if t > since > 0 else 0


class UsageSampler:
    def __init__(
        self,
        reader: CgroupReader,
        lister: Lister | None,
        clock: Callable[[], float] = time.time,
        ip: str = "",
    ) -> None:
        self.reader, self.lister, self.clock = reader, lister, clock
        self.ip = ip  # the node's InternalIP: how a scrape of its kubelet address finds it on the cloud
        self._prev: dict[str, tuple[float, int]] = {}  # container id (or "" for the node) -> (t, cpu ns)
        self._last: float | None = None
        self.samples = self.reported = self.errors = 0
        self.last_cost = 0.0  # CPU seconds of this process spent on the last sample
        self.cost = 0.0  # ... on all samples (the reading thread included)
        self._failing = ""

    async def _containers(self) -> list[tuple[str, dict[str, str], float]]:
        if self.lister is None:
            return []
        out = []
        for c in await self.lister():
            labels = c.get("Labels") or {}
            if labels.get("io.kedge.container.kind") == "sandbox" or not labels.get("io.kedge.pod.uid"):
                continue
            out.append((str(c.get("Id", "")), labels, float(c.get("Created") or 0)))
        return out[:MAX_CONTAINERS]

    def _read(
        self, containers: list[tuple[str, dict[str, str], float]]
    ) -> tuple[Reading, list[Reading | None]]:
        self.reader.forget({cid for cid, _, _ in containers})
        return self.reader.node(), [self.reader.container(cid) for cid, _, _ in containers]

    async def sample(self) -> dict[str, Any] | None:
        """One sample; the report it makes, or None for the first (no window yet)."""
        began = time.process_time()
        try:
            containers = await self._containers()
        except Exception as exc:  # the engine away: the node's usage still counts
            self.errors += 1
            log.debug("usage: listing containers failed: %s", exc)
            containers = []
        node, readings = await asyncio.to_thread(self._read, containers)
        t = self.clock()
        last, self._last = self._last, t
        prev, self._prev = self._prev, {}
        self._prev[""] = (t, node.cpu_ns)
        pods: dict[str, dict[str, Any]] = {}
        for (cid, labels, created), r in zip(containers, readings, strict=True):
            if r is None:
                continue
            self._prev[cid] = (t, r.cpu_ns)
            uid = labels["io.kedge.pod.uid"]
            pod = pods.setdefault(
                uid,
                {
                    "namespace": labels.get("io.kedge.pod.namespace", "default"),
                    "name": labels.get("io.kedge.pod.name", ""),
                    "uid": uid,
                    "containers": [],
                },
            )
            pod["containers"].append(
                {
                    "name": labels.get("io.kedge.container.name", ""),
                    "start": int(created),
                    "cpu": r.cpu_ns,
                    "cpuRate": _rate(r, t, prev.get(cid), created),
                    "memory": r.memory,
                }
            )
        self.samples += 1
        self.last_cost = time.process_time() - began
        self.cost += self.last_cost
        if last is None:
            return None
        return {
            "time": int(t * 1000),
            "window": int((t - last) * 1000),
            "node": {"cpu": node.cpu_ns, "cpuRate": _rate(node, t, prev.get(""), 0), "memory": node.memory},
            "pods": list(pods.values()),
            "ip": self.ip,
        }

    async def run(
        self, send: Callable[[dict[str, Any]], Awaitable[bool]], stop: asyncio.Event, interval: float
    ) -> None:
        """Sample every ``interval`` seconds (the first two samples FIRST_WINDOW apart) and hand each
        report to ``send`` (False: not delivered, nobody to tell) until ``stop``."""
        wait = min(FIRST_WINDOW, interval)
        while not stop.is_set():
            try:
                report = await self.sample()
                if report is not None and await send(report):
                    self.reported += 1
            except Exception as exc:  # usage is never worth a dead task; said once per kind of failure
                self.errors += 1
                if str(exc) != self._failing:
                    log.warning("usage sample failed: %s (said once; counted in kedge status)", exc)
                self._failing = str(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = interval

    def status(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "reported": self.reported,
            "errors": self.errors,
            "cpuSeconds": round(self.cost, 6),
        }
