"""What a pod references outside itself, and how its own fields are read (env, downwardAPI).

`RefResolver` is served by the edge runtime from its cache (or the cloud); the pod manager never talks
to the cloud itself. A missing, non-optional reference is a `RefMissing`, which the manager turns into
a waiting reason (CreateContainerConfigError for env, ContainerCreating + FailedMount for volumes) —
never a crash.
"""

from __future__ import annotations

import base64
import math
import os
from fractions import Fraction
from typing import Any, Protocol

from runtime.quantity import parse_quantity


class RefResolver(Protocol):
    async def configmap(self, ns: str, name: str) -> dict[str, Any] | None: ...

    async def secret(self, ns: str, name: str) -> dict[str, Any] | None: ...

    async def sa_token(
        self, ns: str, sa: str, pod: dict[str, Any], expiration: int, audience: list[str] | None
    ) -> str | None: ...


class RefMissing(Exception):
    """A referenced object or key is absent; the message reads like kubelet's."""


def configmap_data(cm: dict[str, Any]) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def secret_data(secret: dict[str, Any]) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


async def source_data(refs: RefResolver, ns: str, kind: str, name: str, optional: bool) -> dict[str, bytes]:
    """Keys of a configmap or secret; {} when optional and absent, RefMissing otherwise."""
    obj = await (refs.configmap(ns, name) if kind == "configmap" else refs.secret(ns, name))
    if obj is None:
        if optional:
            return {}
        raise RefMissing(f'{kind} "{name}" not found')
    return configmap_data(obj) if kind == "configmap" else secret_data(obj)


def _fmt_map(m: dict[str, str]) -> str:
    return "\n".join(f'{k}="{v}"' for k, v in sorted(m.items()))


def field_value(pod: dict[str, Any], path: str, host_ip: str, pod_ip: str) -> str:
    """Value of a fieldRef, as kubelet renders it (maps as k="v" lines for downwardAPI files)."""
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path == prefix:
            return _fmt_map(meta.get(key) or {})
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(key) or {}).get(path[len(prefix) + 2 : -2], ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if path not in simple:
        raise RefMissing(f"unsupported fieldRef {path!r}")
    return str(simple[path])


def _node_allocatable(resource: str) -> Fraction:
    if resource == "cpu":
        return Fraction(os.cpu_count() or 1)
    if resource == "memory":
        return Fraction(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return Fraction(0)


def resource_value(pod: dict[str, Any], container: str, resource: str, divisor: str | None) -> str:
    """resourceFieldRef: limits.* fall back to node allocatable, rounded up to the divisor (kubelet)."""
    kind, _, res = resource.partition(".")
    c = next((c for c in _all_containers(pod) if c.get("name") == container), {})
    raw = ((c.get("resources") or {}).get(kind) or {}).get(res)
    if raw is None and kind == "requests":
        raw = ((c.get("resources") or {}).get("limits") or {}).get(res)
    value = parse_quantity(raw) if raw is not None else (_node_allocatable(res) if kind == "limits" else 0)
    div = parse_quantity(divisor) if divisor else Fraction(1)
    return str(math.ceil(Fraction(value) / div))


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec", {})
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
