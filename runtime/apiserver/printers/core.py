"""Table printers for nodes and events, and the helpers every printer shares (AGE, columns).

As kube-apiserver's pkg/printers/internalversion defines them.

Columns (names, types, priorities) and cell values match the real server; the server always prints
the wide form and kubectl hides priority-1 columns unless `-o wide`. Used by tables.to_table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Obj = dict[str, Any]

NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
    "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for "
    "lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def col(name: str, desc: str = "", typ: str = "string", fmt: str = "", priority: int = 0) -> Obj:
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME = col("Name", NAME_DOC, fmt="name")
AGE = col("Age", CREATED_DOC)
TEMPLATE_WIDE = [
    col("Containers", "Names of each container in the template.", priority=1),
    col("Images", "Images referenced by each container in the template.", priority=1),
    col("Selector", "A label query over pods that should match the replica count.", priority=1),
]


# ---------------------------------------------------------------- time


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery duration.HumanDuration: what kubectl shows in AGE columns."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: "<unknown>" for a missing time."""
    ts = parse_time(value)
    if ts is None:
        return "<unknown>"
    return human_duration((now - ts).total_seconds())


def _age(o: Obj, now: datetime) -> str:
    return since((o.get("metadata") or {}).get("creationTimestamp"), now)


def name_of(o: Obj) -> str:
    return str((o.get("metadata") or {}).get("name", ""))


def _get(o: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(o, dict):
            return None
        o = o.get(p)
    return o


# ---------------------------------------------------------------- other built-in kinds


def _node_row(n: Obj, now: datetime) -> Obj:
    conds = {c.get("type"): c for c in _get(n, "status", "conditions") or []}
    status: list[str] = []
    if "Ready" in conds:
        status.append("Ready" if conds["Ready"].get("status") == "True" else "NotReady")
    if not status:
        status.append("Unknown")
    if _get(n, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    roles: set[str] = set()
    for k, v in ((n.get("metadata") or {}).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/") :]:
            roles.add(k[len("node-role.kubernetes.io/") :])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    info = _get(n, "status", "nodeInfo") or {}
    addrs = _get(n, "status", "addresses") or []

    def addr(kind: str) -> str:
        return next((a.get("address") for a in addrs if a.get("type") == kind), None) or "<none>"

    return {
        "cells": [
            name_of(n),
            ",".join(status),
            ",".join(sorted(roles)) or "<none>",
            _age(n, now),
            info.get("kubeletVersion", ""),
            addr("InternalIP"),
            addr("ExternalIP"),
            info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]
    }


NODE_COLUMNS = [
    NAME,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE,
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of addresses reachable to the node.", priority=1),
    col("External-IP", "List of addresses reachable to the node.", priority=1),
    col(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    col(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    col(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        priority=1,
    ),
]


def _event_row(e: Obj, now: datetime) -> Obj:
    first = since(e.get("firstTimestamp"), now)
    if parse_time(e.get("firstTimestamp")) is None:
        first = since(e.get("eventTime"), now)
    last = since(e.get("lastTimestamp"), now) if parse_time(e.get("lastTimestamp")) else first
    count = e.get("count") or 0
    series = e.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    io = e.get("involvedObject") or {}
    kind = str(io.get("kind", "")).lower()
    target = f"{kind}/{io['name']}" if io.get("name") else kind
    component = _get(e, "source", "component") or e.get("reportingComponent") or ""
    instance = _get(e, "source", "host") or e.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return {
        "cells": [
            last,
            e.get("type", ""),
            e.get("reason", ""),
            target,
            io.get("fieldPath", ""),
            source,
            str(e.get("message", "")).strip(),
            first,
            int(count),
            name_of(e),
        ]
    }


EVENT_COLUMNS = [
    col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    col(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status.",
    ),
    col("Object", "The object that this event is about."),
    col(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should "
        "contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        priority=1,
    ),
    col(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
        priority=1,
    ),
    col("Message", "A human-readable description of the status of this operation."),
    col(
        "First Seen",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        priority=1,
    ),
    col("Count", "The number of times this event has occurred.", priority=1),
    col("Name", NAME_DOC, fmt="name", priority=1),
]
