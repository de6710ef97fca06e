"""NodeMetrics and PodMetrics (metrics.k8s.io/v1beta1) as metrics-server answers them.

Objects carry the stored object's name, namespace and labels (metrics-server takes them from its
informers: a pod or node the API server does not hold has no metrics), `timestamp` (when the edge
sampled), `window` (the span its CPU rate covers) and `usage` {cpu: nanocores "…n", memory: bytes,
"…Ki" when whole}. Lists take `labelSelector` (on the object's labels) and, for pods,
`fieldSelector` on metadata.name / metadata.namespace; get of a name without metrics is 404 NotFound,
as metrics-server's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime.apiserver.api import Api
from runtime.apiserver.http.status_errors import (
    StatusError,
    bad_request,
    method_not_allowed,
    not_found,
    path_not_found,
)
from runtime.apiserver.metricsapi.source import UsageSource
from runtime.apiserver.registry.fieldselectors import SelectorError, parse_field_selector
from runtime.apiserver.registry.selectors import parse_label_selector

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
Obj = dict[str, Any]


def cpu(nanocores: int) -> str:
    return f"{int(nanocores)}n"


def memory(n: int) -> str:
    n = int(n)
    return f"{n // 1024}Ki" if n and n % 1024 == 0 else str(n)


def _usage(stats: Obj) -> Obj:
    return {
        "cpu": cpu((stats.get("cpu") or {}).get("usageNanoCores", 0)),
        "memory": memory((stats.get("memory") or {}).get("workingSetBytes", 0)),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricsApi:
    def __init__(self, api: Api, source: UsageSource) -> None:
        self.api, self.source = api, source

    @staticmethod
    def discovery_entries() -> list[Obj]:
        return [
            {
                "name": "nodes",
                "singularName": "",
                "namespaced": False,
                "kind": "NodeMetrics",
                "verbs": ["get", "list"],
            },
            {
                "name": "pods",
                "singularName": "",
                "namespaced": True,
                "kind": "PodMetrics",
                "verbs": ["get", "list"],
            },
        ]

    async def answer(self, method: str, rest: list[str], query: Any) -> Obj:
        """The object or list for /apis/metrics.k8s.io/v1beta1/<rest>; StatusError otherwise."""
        if method != "GET":
            raise method_not_allowed()
        if query.get("watch") in ("1", "true"):
            raise method_not_allowed()
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), "podmetrics")
        except (SelectorError, ValueError) as exc:
            raise bad_request(str(exc)) from exc
        if rest and rest[0] == "nodes" and len(rest) <= 2:
            items = await self._nodes(rest[1] if len(rest) == 2 else None)
            kind = "NodeMetrics"
            resource = "nodes"
        elif rest and rest[0] == "pods" and len(rest) == 1:
            items, kind, resource = await self._pods(None, None), "PodMetrics", "pods"
        elif len(rest) in (3, 4) and rest[0] == "namespaces" and rest[2] == "pods":
            items = await self._pods(rest[1], rest[3] if len(rest) == 4 else None)
            kind, resource = "PodMetrics", "pods"
        else:
            raise path_not_found()
        name = rest[-1] if (resource == "nodes" and len(rest) == 2) or len(rest) == 4 else None
        if name is not None:
            if not items:
                raise not_found(resource, name, GROUP)
            return items[0]
        chosen = [o for o in items if labels.matches(o["metadata"].get("labels")) and fields.matches(o)]
        return {"kind": kind + "List", "apiVersion": API_VERSION, "metadata": {}, "items": chosen}

    async def _nodes(self, only: str | None) -> list[Obj]:
        out = []
        for s in await self.source.summaries():
            node = s.get("node") or {}
            name = str(node.get("nodeName", ""))
            if only is not None and name != only:
                continue
            entry = self.api.store.get("/nodes", "", name)
            if entry is None:
                continue
            out.append(
                {
                    "kind": "NodeMetrics",
                    "apiVersion": API_VERSION,
                    "metadata": {"name": name, "creationTimestamp": _now(), "labels": dict(entry.labels)},
                    "timestamp": (node.get("cpu") or {}).get("time", ""),
                    "window": s.get("window", "15s"),
                    "usage": _usage(node),
                }
            )
        return sorted(out, key=lambda o: o["metadata"]["name"])

    async def _pods(self, ns: str | None, only: str | None) -> list[Obj]:
        out = []
        for s in await self.source.summaries():
            for p in s.get("pods") or ():
                ref = p.get("podRef") or {}
                pns, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
                if (ns is not None and pns != ns) or (only is not None and name != only):
                    continue
                entry = self.api.store.get("/pods", pns, name)
                if entry is None or entry.obj()["metadata"].get("uid") != ref.get("uid"):
                    continue  # a pod the server no longer holds (or a namesake) has no metrics
                containers = [
                    {"name": c.get("name", ""), "usage": _usage(c)} for c in p.get("containers") or ()
                ]
                out.append(
                    {
                        "kind": "PodMetrics",
                        "apiVersion": API_VERSION,
                        "metadata": {
                            "name": name,
                            "namespace": pns,
                            "creationTimestamp": _now(),
                            "labels": dict(entry.labels),
                        },
                        "timestamp": (p.get("cpu") or {}).get("time", ""),
                        "window": s.get("window", "15s"),
                        "containers": containers,
                    }
                )
        return sorted(out, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


__all__ = ["GROUP", "VERSION", "MetricsApi", "StatusError"]
