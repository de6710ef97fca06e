"""Does a pod fit a node? kube-scheduler's filter plugins that a one-machine cluster needs, as pure
functions: NodeUnschedulable, NodeName, NodeAffinity (nodeSelector + required affinity), TaintToleration
and NodeResourcesFit (cpu, memory, pods); plus a least-allocated score to spread pods.

Why pure: the same verdicts drive binding and the `0/3 nodes are available: …` message, and are
testable without a server. Reasons use kube-scheduler's wording so users recognise them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from runtime.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
RESOURCES = ("cpu", "memory")


def is_ready(node: Obj) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = tol.get("operator") or "Equal"
        key = tol.get("key") or ""
        if not key:
            if op == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if op == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expr_matches(expr: Obj, values: dict[str, str]) -> bool:
    key, op, wanted = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def matches_affinity(pod: Obj, node: Obj) -> bool:
    """nodeSelector AND required node affinity (terms ORed, expressions within a term ANDed)."""
    spec = pod.get("spec") or {}
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": meta.get("name", "")}
    for term in terms:
        exprs, mfields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not mfields:
            continue  # an empty term matches nothing
        if all(_expr_matches(e, labels) for e in exprs) and all(_expr_matches(e, fields) for e in mfields):
            return True
    return False


def _q(value: Any) -> Fraction:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError):
        return Fraction(0)


def pod_requests(pod: Obj) -> dict[str, Fraction]:
    """Effective requests: max(sum of containers, each init container) + overhead."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {r: Fraction(0) for r in RESOURCES}
    for c in spec.get("containers") or []:
        for r in RESOURCES:
            total[r] += _q(((c.get("resources") or {}).get("requests") or {}).get(r, 0))
    for c in spec.get("initContainers") or []:
        for r in RESOURCES:
            total[r] = max(total[r], _q(((c.get("resources") or {}).get("requests") or {}).get(r, 0)))
    for r in RESOURCES:
        total[r] += _q((spec.get("overhead") or {}).get(r, 0))
    return total


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class NodeUsage:
    """What the pods on one node request (pods counted as the scheduler sees them, bound or assumed)."""

    def __init__(self) -> None:
        self.requested: dict[str, Fraction] = {r: Fraction(0) for r in RESOURCES}
        self.pods = 0

    def add(self, pod: Obj, sign: int = 1) -> None:
        self.add_requests(pod_requests(pod), sign)

    def add_requests(self, requests: dict[str, Fraction], sign: int = 1) -> None:
        for r, v in requests.items():
            self.requested[r] += sign * v
        self.pods += sign


def allocatable(node: Obj) -> dict[str, Fraction]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return {r: _q(alloc.get(r, 0)) for r in ("cpu", "memory", "pods")}


def filter_node(pod: Obj, node: Obj, usage: NodeUsage) -> str | None:
    """None if the pod fits, else kube-scheduler's reason phrase for this node."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
        tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ):
        return "node(s) were unschedulable"
    if not matches_affinity(pod, node):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    if not is_ready(node):
        return "node(s) were not ready"
    alloc = allocatable(node)
    if usage.pods + 1 > alloc["pods"]:
        return "Too many pods"
    want = pod_requests(pod)
    for r in RESOURCES:
        if want[r] and usage.requested[r] + want[r] > alloc[r]:
            return f"Insufficient {r}"
    return None


def score(pod: Obj, node: Obj, usage: NodeUsage) -> float:
    """Least allocated after placing the pod (higher is better), counting pods too so empty pods spread."""
    alloc = allocatable(node)
    want = pod_requests(pod)
    fractions = [float((usage.pods + 1) / alloc["pods"]) if alloc["pods"] else 1.0]
    for r in RESOURCES:
        if alloc[r]:
            fractions.append(float((usage.requested[r] + want[r]) / alloc[r]))
    return 1.0 - sum(fractions) / len(fractions)


def unschedulable_message(total: int, reasons: Iterable[str]) -> str:
    """`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match …` — the "N reason"
    strings sorted as strings, as kube-scheduler's FitError does."""
    if total == 0:
        return "no nodes available to schedule pods"
    counts = Counter(reasons)
    parts = ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))
    return f"0/{total} nodes are available: {parts}."
