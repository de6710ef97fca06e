"""Every active namespace gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap.

kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers do this in a real
cluster, and every pod depends on it: admission names `default` as the pod's ServiceAccount and the
projected `kube-api-access-*` volume reads `kube-root-ca.crt`. Deleting either brings it back; a
terminating namespace is left alone.
"""

from __future__ import annotations

from runtime.apiserver.controllers.base import Informers, Obj, WorkQueue, run_all, run_worker
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import AlreadyExists, Forbidden, KubeNotFound
from runtime.kube.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS, Res

ROOT_CA = "kube-root-ca.crt"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)


def _active(ns: Obj | None) -> bool:
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (ns.get("status") or {}).get("phase", "Active") != "Terminating"


class NamespaceDefaults:
    name = "serviceaccount-and-root-ca"

    def __init__(self, informers: Informers, ca_pem: str, *, health: ControllerHealth | None = None) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.ca_pem = ca_pem
        self.queue = WorkQueue()

        def queue_namespace(typ: str, obj: Obj, prev: Obj | None) -> None:
            meta = obj.get("metadata") or {}
            self.queue.add(meta.get("namespace") or meta.get("name") or "")

        by_namespace = self.health.guard(self.name, queue_namespace)

        self.namespaces = informers.get(NAMESPACES, on_change=by_namespace)
        self.accounts = informers.get(SERVICEACCOUNTS, fields="metadata.name=default", on_change=by_namespace)
        self.configmaps = informers.get(CONFIGMAPS, fields=f"metadata.name={ROOT_CA}", on_change=by_namespace)

    async def run(self) -> None:
        async def worker() -> None:
            for inf in (self.namespaces, self.accounts, self.configmaps):
                await inf.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        await run_all(self.name, self.namespaces.run(), self.accounts.run(), self.configmaps.run(), worker())

    async def reconcile(self, ns: str) -> None:
        if not _active(self.namespaces.get("", ns)):
            return
        try:
            if self.accounts.get(ns, "default") is None:
                await self._create(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": ns}})
            cm = self.configmaps.get(ns, ROOT_CA)
            if cm is None:
                body = {
                    "metadata": {
                        "name": ROOT_CA,
                        "namespace": ns,
                        "annotations": {"kubernetes.io/description": DESCRIPTION},
                    },
                    "data": {"ca.crt": self.ca_pem},
                }
                await self._create(CONFIGMAPS, body)
            elif (cm.get("data") or {}) != {"ca.crt": self.ca_pem}:
                fixed = {**cm, "data": {"ca.crt": self.ca_pem}}
                await self.client.replace(CONFIGMAPS, fixed)
        except (Forbidden, KubeNotFound):
            return  # the namespace started terminating or vanished meanwhile

    async def _create(self, res: Res, body: Obj) -> None:
        try:
            await self.client.create(res, body)
        except AlreadyExists:
            pass  # the cache is behind; its watch event will requeue if anything is still missing
