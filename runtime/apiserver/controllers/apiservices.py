"""APIService availability: the `Available` condition kube-aggregator's available controller keeps.

kedge stores and lists APIServices (client tools create them, metrics-server's manifest among them)
but does not proxy aggregated APIs, so one backed by a service is never reachable through it: it is
`Available=False, ServiceNotProxied` with a message saying so, as a real server marks a service it
cannot reach. A local one (no `spec.service`: the group is served by the API server itself) is
`Available=True, Local` as in Kubernetes. Conditions of other types are kept.
"""

from __future__ import annotations

import datetime

from runtime.apiserver.controllers.base import (
    Informers,
    Obj,
    WorkQueue,
    run_all,
    run_worker,
    set_condition,
)
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.resources import APISERVICES

NOT_PROXIED = "ServiceNotProxied"


def available_condition(apiservice: Obj, now: str) -> Obj:
    spec = apiservice.get("spec") or {}
    svc = spec.get("service")
    cond: Obj = {"type": "Available", "lastTransitionTime": now}
    if not isinstance(svc, dict):
        return cond | {
            "status": "True",
            "reason": "Local",
            "message": "Local APIServices are always available",
        }
    group_version = f"{spec.get('group') or ''}/{spec.get('version') or ''}"
    message = (
        f"kedge's embedded API server does not proxy aggregated APIs: {group_version} is not served "
        f"through it (service {svc.get('namespace') or ''}/{svc.get('name') or ''})"
    )
    return cond | {"status": "False", "reason": NOT_PROXIED, "message": message}


class APIServiceAvailability:
    name = "apiservice-availability"

    def __init__(self, informers: Informers, *, health: ControllerHealth | None = None) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.queue = WorkQueue()
        self.apiservices = informers.get(APISERVICES, on_change=self.health.guard(self.name, self._changed))

    def _changed(self, typ: str, obj: Obj, prev: Obj | None) -> None:
        if typ != "DELETED":
            self.queue.add(obj["metadata"]["name"])

    async def run(self) -> None:
        async def worker() -> None:
            await self.apiservices.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        await run_all(self.name, self.apiservices.run(), worker())

    async def reconcile(self, name: str) -> None:
        obj = self.apiservices.get("", name)
        if obj is None:
            return
        status = obj.get("status") or {}
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = set_condition(status.get("conditions"), available_condition(obj, now))
        if conditions != status.get("conditions"):
            await self.apiservices.write_status(obj, {"conditions": conditions})
