"""Printers for the workload, network and configuration kinds, and the registry of all built-in printers.

Same source and rules as core.py (pkg/printers/internalversion): column names, types and
priorities as the real server declares them, cells as it computes them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from runtime.apiserver.printers.core import (
    AGE,
    EVENT_COLUMNS,
    NAME,
    NODE_COLUMNS,
    TEMPLATE_WIDE,
    Obj,
    _age,
    _event_row,
    _get,
    _node_row,
    col,
    name_of,
)
from runtime.apiserver.printers.pods import POD_COLUMNS, pod_row


def _containers(o: Obj) -> tuple[str, str]:
    cs = _get(o, "spec", "template", "spec", "containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector_str(sel: Any) -> str:
    from runtime.apiserver.registry.selectors import SelectorError, label_selector_from_dict

    try:
        return str(label_selector_from_dict(sel))
    except SelectorError:
        return "<invalid>"


def _replicationcontroller_row(rc: Obj, now: datetime) -> Obj:
    """As a ReplicaSet's row; the selector is a plain label map (labels.FormatLabels)."""
    selector = _get(rc, "spec", "selector")
    row = _replicaset_row({**rc, "spec": {**(rc.get("spec") or {}), "selector": None}}, now)
    labels = selector if isinstance(selector, dict) else {}
    row["cells"][-1] = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"
    return row


def _apiservice_row(a: Obj, now: datetime) -> Obj:
    """kube-aggregator's table: Local or namespace/name, and Available as True / False (Reason)."""
    svc = _get(a, "spec", "service")
    service = f"{svc.get('namespace', '')}/{svc.get('name', '')}" if isinstance(svc, dict) else "Local"
    available = "Unknown"
    for c in _get(a, "status", "conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Available":
            ok = c.get("status") == "True"
            available = str(c.get("status")) if ok else f"{c.get('status')} ({c.get('reason') or ''})"
    return {"cells": [name_of(a), service, available, _age(a, now)]}


def _deployment_row(d: Obj, now: datetime) -> Obj:
    st = d.get("status") or {}
    names, images = _containers(d)
    desired = _get(d, "spec", "replicas")
    return {
        "cells": [
            name_of(d),
            f"{int(st.get('readyReplicas') or 0)}/{int(1 if desired is None else desired)}",
            int(st.get("updatedReplicas") or 0),
            int(st.get("availableReplicas") or 0),
            _age(d, now),
            names,
            images,
            _selector_str(_get(d, "spec", "selector")),
        ]
    }


def _replicaset_row(rs: Obj, now: datetime) -> Obj:
    st = rs.get("status") or {}
    names, images = _containers(rs)
    desired = _get(rs, "spec", "replicas")
    return {
        "cells": [
            name_of(rs),
            int(1 if desired is None else desired),
            int(st.get("replicas") or 0),
            int(st.get("readyReplicas") or 0),
            _age(rs, now),
            names,
            images,
            _selector_str(_get(rs, "spec", "selector")),
        ]
    }


def _port_string(ports: list[Obj]) -> str:
    out = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out)


def _service_row(s: Obj, now: datetime) -> Obj:
    spec = s.get("spec") or {}
    stype = spec.get("type") or ""
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = ",".join(spec.get("externalIPs") or [])
    if stype == "LoadBalancer":
        lb = ",".join(
            i.get("ip") or i.get("hostname") or "" for i in _get(s, "status", "loadBalancer", "ingress") or []
        )
        joined = ",".join(x for x in (external, lb) if x)
        external = joined or "<pending>"
    elif stype == "ExternalName":
        external = spec.get("externalName") or ""
    sel = spec.get("selector") or {}
    return {
        "cells": [
            name_of(s),
            stype,
            ips[0] if ips else "<none>",
            external or "<none>",
            _port_string(spec.get("ports") or []) or "<none>",
            _age(s, now),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>",
        ]
    }


SERVICE_COLUMNS = [
    NAME,
    col("Type", "type determines how the Service is exposed."),
    col("Cluster-IP", "clusterIP is the IP address of the service."),
    col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
        "traffic for this service.",
    ),
    col("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    col(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector.",
        priority=1,
    ),
]


def _endpoints_row(e: Obj, now: datetime) -> Obj:
    pairs = []
    for ss in e.get("subsets") or []:
        for a in ss.get("addresses") or []:
            for p in ss.get("ports") or [{}]:
                pairs.append(f"{a.get('ip')}:{p['port']}" if p.get("port") else str(a.get("ip")))
    shown = ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
    return {"cells": [name_of(e), shown or "<none>", _age(e, now)]}


def _replica_columns(what: str) -> list[Obj]:
    """ReplicaSet's and ReplicationController's columns (the same but for one description)."""
    return [
        NAME,
        col("Desired", "Replicas is the number of desired replicas.", "integer"),
        col("Current", "Replicas is the most recently observed number of replicas.", "integer"),
        col("Ready", f"The number of ready replicas for this {what}.", "integer"),
        AGE,
        *TEMPLATE_WIDE,
    ]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, datetime], Obj]:
    def row(o: Obj, now: datetime) -> Obj:
        return {"cells": [name_of(o), *(c(o) for c in cells), _age(o, now)]}

    return row


PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj, datetime], Obj]]] = {
    "pods": (POD_COLUMNS, pod_row),
    "nodes": (NODE_COLUMNS, _node_row),
    "events": (EVENT_COLUMNS, _event_row),
    "namespaces": (
        [NAME, col("Status", "The status of the namespace"), AGE],
        _simple(lambda o: _get(o, "status", "phase") or ""),
    ),
    "configmaps": (
        [NAME, col("Data", "Data contains the configuration data."), AGE],
        _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
    ),
    "secrets": (
        [
            NAME,
            col("Type", "Used to facilitate programmatic handling of secret data."),
            col("Data", "Data contains the secret data."),
            AGE,
        ],
        _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {})),
    ),
    "serviceaccounts": (
        [
            NAME,
            col(
                "Secrets",
                "Secrets is a list of the secrets in the same namespace that pods "
                "running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ],
        _simple(lambda o: len(o.get("secrets") or [])),
    ),
    "leases": (
        [NAME, col("Holder", "holderIdentity contains the identity of the holder of a current lease."), AGE],
        _simple(lambda o: _get(o, "spec", "holderIdentity") or ""),
    ),
    "services": (SERVICE_COLUMNS, _service_row),
    "endpoints": (
        [NAME, col("Endpoints", "The set of all endpoints is the union of all subsets."), AGE],
        _endpoints_row,
    ),
    "deployments": (
        [
            NAME,
            col("Ready", "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have "
                "the desired template spec.",
            ),
            col(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) "
                "targeted by this deployment.",
            ),
            AGE,
            *TEMPLATE_WIDE,
        ],
        _deployment_row,
    ),
    "replicasets": (_replica_columns("replica set"), _replicaset_row),
    "replicationcontrollers": (_replica_columns("replication controller"), _replicationcontroller_row),
    "apiservices": (
        [
            NAME,
            col("Service", "The reference to the service that hosts this API endpoint."),
            col("Available", "Whether this service is available."),
            AGE,
        ],
        _apiservice_row,
    ),
}
