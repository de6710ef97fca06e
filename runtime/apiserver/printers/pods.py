"""The pod printer (`kubectl get pods`): READY, STATUS and RESTARTS as kube-apiserver computes them.

printPod in pkg/printers/internalversion, read as steps: the base reason (phase, or SchedulingGated);
the init containers (restarts, ready sidecars, and the `Init:…` reason of the first one still
blocking); the app containers, walked last to first as Go does (their waiting/terminated reasons win);
then deletion (Terminating, or Unknown for a lost node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from runtime.apiserver.printers.core import (
    AGE,
    NAME,
    Obj,
    _age,
    _get,
    col,
    human_duration,
    name_of,
    parse_time,
)


@dataclass
class _Restarts:
    """Summed restartCount and the latest lastState.terminated.finishedAt of the containers added."""

    count: int = 0
    last: datetime | None = None

    def add(self, cs: Obj) -> None:
        self.count += int(cs.get("restartCount") or 0)
        t = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        if t is not None and (self.last is None or t > self.last):
            self.last = t

    def text(self, now: datetime) -> str:
        if self.count and self.last is not None:
            return f"{self.count} ({human_duration((now - self.last).total_seconds())} ago)"
        return str(self.count)


@dataclass
class _Init:
    """What the init containers contribute: `blocked_by` is the Init:… reason of the first one still
    blocking the pod (None when all are done or are started sidecars)."""

    blocked_by: str | None = None
    ready: int = 0  # started, ready sidecars
    restarts: _Restarts = field(default_factory=_Restarts)  # every init container
    sidecar_restarts: _Restarts = field(default_factory=_Restarts)


def _condition_true(status: Obj, typ: str) -> bool:
    return any(c.get("type") == typ and c.get("status") == "True" for c in status.get("conditions") or [])


def _is_sidecar(c: Obj) -> bool:
    return c.get("restartPolicy") == "Always"


def _terminated(term: Obj) -> str:
    if term.get("reason"):
        return str(term["reason"])
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def _base_reason(status: Obj) -> str:
    reason = status.get("reason") or status.get("phase") or ""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return str(reason)


def _init_reason(state: Obj, index: int, count: int) -> str:
    term, wait = state.get("terminated"), state.get("waiting")
    if term is not None:
        return "Init:" + _terminated(term)
    if wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
        return "Init:" + wait["reason"]
    return f"Init:{index}/{count}"


def _walk_init(spec: Obj, status: Obj) -> _Init:
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    out = _Init()
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        out.restarts.add(cs)
        sidecar = _is_sidecar(init_specs.get(cs.get("name")) or {})
        if sidecar:
            out.sidecar_restarts.add(cs)
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            out.ready += 1 if cs.get("ready") else 0
            continue
        out.blocked_by = _init_reason(state, i, len(spec.get("initContainers") or []))
        break
    return out


def _walk_containers(status: Obj, reason: str, restarts: _Restarts) -> tuple[str, int]:
    """The reason after the app containers (last to first) and how many are ready and running."""
    ready = 0
    for cs in reversed(status.get("containerStatuses") or []):
        restarts.add(cs)
        state = cs.get("state") or {}
        wait, term = state.get("waiting"), state.get("terminated")
        if wait is not None and wait.get("reason"):
            reason = wait["reason"]
        elif term is not None:
            reason = _terminated(term)
        elif cs.get("ready") and state.get("running") is not None:
            ready += 1
    if reason == "Completed" and ready:
        reason = "Running" if _condition_true(status, "Ready") else "NotReady"
    return reason, ready


def _deletion_reason(meta: Obj, status: Obj, reason: str) -> str:
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        return "Unknown"
    if meta.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        return "Terminating"
    return reason


def _readiness_gates(spec: Obj, status: Obj) -> str:
    gates = spec.get("readinessGates") or []
    if not gates:
        return "<none>"
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"


def _completed(phase: str) -> list[Obj] | None:
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


def pod_row(pod: Obj, now: datetime) -> Obj:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs.values() if _is_sidecar(c))
    init = _walk_init(spec, status)
    reason, ready, restarts = init.blocked_by or _base_reason(status), init.ready, init.restarts
    if init.blocked_by is None or _condition_true(status, "Initialized"):
        restarts = init.sidecar_restarts
        reason, running = _walk_containers(status, reason, restarts)
        ready += running
    ips = status.get("podIPs") or []
    row: Obj = {
        "cells": [
            name_of(pod),
            f"{ready}/{total}",
            _deletion_reason(pod.get("metadata") or {}, status, reason),
            restarts.text(now),
            _age(pod, now),
            (ips[0].get("ip") if ips else "") or "<none>",
            spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>",
            _readiness_gates(spec, status),
        ]
    }
    completed = _completed(status.get("phase") or "")
    if completed is not None:
        row["conditions"] = completed
    return row


POD_COLUMNS = [
    NAME,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    AGE,
    col(
        "IP",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
        "allocated.",
        priority=1,
    ),
    col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
    col(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
        priority=1,
    ),
    col(
        "Readiness Gates",
        "If specified, all readiness gates will be evaluated for pod readiness.",
        priority=1,
    ),
]
