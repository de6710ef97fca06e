"""Which workload kinds the embedded control plane runs, and the warning for those it only stores.

A real cluster runs every built-in workload; the embedded one runs Deployments, ReplicaSets,
ReplicationControllers and Pods (scheduling, eviction, GC). A user applying a DaemonSet, StatefulSet,
Job or CronJob must be told it will not run, and the API server says so the Kubernetes way — a
`Warning` response header (code 299) that kubectl prints as `Warning: …`. The server calls
`stored_only_warning()` on writes — when the control plane runs: a bare `kedge apiserver
--no-controllers` runs nothing, answers as a bare kube-apiserver and warns about nothing.
"""

from __future__ import annotations

RUN: frozenset[tuple[str, str]] = frozenset(
    {("apps", "Deployment"), ("apps", "ReplicaSet"), ("", "ReplicationController"), ("", "Pod")}
)
STORED_ONLY: frozenset[tuple[str, str]] = frozenset(
    {
        ("apps", "DaemonSet"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
    }
)


def stored_only_message(group: str, kind: str) -> str | None:
    """The warning text for a write of `kind`, or None when a controller runs it."""
    if (group, kind) not in STORED_ONLY:
        return None
    return f"stored only: no {kind} controller in the embedded control plane"


def stored_only_warning(group: str, kind: str) -> str | None:
    """The `Warning` header value for a write of `kind`, or None when a controller runs it."""
    message = stored_only_message(group, kind)
    return None if message is None else f'299 - "{message}"'
