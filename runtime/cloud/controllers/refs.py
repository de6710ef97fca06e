"""What a pod references, with the node authorizer's reading of a pod spec.

Why its own module: the same answer decides what the edge controller pushes with a pod and what a
node may query (design.md §4: "a node may touch only itself, its lease, its pods and what they
reference"). Kubernetes' node authorizer walks volumes (every projected source included), env and
envFrom of init, regular and ephemeral containers, imagePullSecrets and the service account; so do we.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class PodRefs:
    """Names (in the pod's namespace) of the ConfigMaps and Secrets a pod uses, and its service account."""

    configmaps: frozenset[str] = field(default_factory=frozenset)
    secrets: frozenset[str] = field(default_factory=frozenset)
    service_account: str = "default"


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping):
                yield c


def _name(ref: Any) -> str:
    return str(ref.get("name") or "") if isinstance(ref, Mapping) else ""


def pod_refs(pod: Obj) -> PodRefs:
    """Every ConfigMap/Secret name the pod may read, per the node authorizer's graph."""
    spec = pod.get("spec") or {}
    cms: set[str] = set()
    secrets: set[str] = set()
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, Mapping):
            continue
        cms.add(_name(vol.get("configMap")))
        secret = vol.get("secret")
        if isinstance(secret, Mapping):
            secrets.add(str(secret.get("secretName") or ""))
        for source in (vol.get("projected") or {}).get("sources") or []:
            if isinstance(source, Mapping):
                cms.add(_name(source.get("configMap")))
                secrets.add(_name(source.get("secret")))
        # volume plugins that name a Secret through secretRef (cephfs, rbd, iscsi, flexVolume, csi, ...)
        for plugin in vol.values():
            if isinstance(plugin, Mapping):
                for key in ("secretRef", "nodePublishSecretRef"):
                    secrets.add(_name(plugin.get(key)))
    for c in _containers(spec):
        for env in c.get("env") or []:
            source = (env or {}).get("valueFrom") or {}
            cms.add(_name(source.get("configMapKeyRef")))
            secrets.add(_name(source.get("secretKeyRef")))
        for env_from in c.get("envFrom") or []:
            cms.add(_name((env_from or {}).get("configMapRef")))
            secrets.add(_name((env_from or {}).get("secretRef")))
    for ref in spec.get("imagePullSecrets") or []:
        secrets.add(_name(ref))
    cms.discard("")
    secrets.discard("")
    sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    return PodRefs(frozenset(cms), frozenset(secrets), sa)
