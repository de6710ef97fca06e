"""Names of the resources kedge uses, and loaders that turn YAML/dicts into objects to apply.

Why a `Res` of our own: the client works on plain dicts (the wire protocol and the controllers carry
JSON), so it only needs the URL pieces. `Res` gives them without a lightkube import in the caller.
lightkube's resource registry (`lookup`) knows the plural and scope of every built-in kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from lightkube import codecs
from lightkube.core import resource as lkr
from lightkube.core.resource_registry import resource_registry


@dataclass(frozen=True)
class Res:
    """One REST resource: enough to build every URL for it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """`/api/v1/namespaces/ns/pods/name/status`; namespace None on a namespaced resource = all."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base

    def collection_path(self, namespace: str | None = None) -> str:
        """The list/watch/deletecollection URL: one namespace, or all (None), of a namespaced kind."""
        return self.path(namespace if self.namespaced else None)


# core/v1
NAMESPACES = Res("", "v1", "Namespace", "namespaces", False)
NODES = Res("", "v1", "Node", "nodes", False)
PODS = Res("", "v1", "Pod", "pods", True)
CONFIGMAPS = Res("", "v1", "ConfigMap", "configmaps", True)
SECRETS = Res("", "v1", "Secret", "secrets", True)
SERVICES = Res("", "v1", "Service", "services", True)
ENDPOINTS = Res("", "v1", "Endpoints", "endpoints", True)
SERVICEACCOUNTS = Res("", "v1", "ServiceAccount", "serviceaccounts", True)
EVENTS = Res("", "v1", "Event", "events", True)
# other built-in groups
LEASES = Res("coordination.k8s.io", "v1", "Lease", "leases", True)
DEPLOYMENTS = Res("apps", "v1", "Deployment", "deployments", True)
REPLICASETS = Res("apps", "v1", "ReplicaSet", "replicasets", True)
REPLICATIONCONTROLLERS = Res("", "v1", "ReplicationController", "replicationcontrollers", True)
APISERVICES = Res("apiregistration.k8s.io", "v1", "APIService", "apiservices", False)
DAEMONSETS = Res("apps", "v1", "DaemonSet", "daemonsets", True)
CRDS = Res("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)

# KubeEdge CRDs (same groups, versions and plurals as KubeEdge's build/crds, so its YAMLs apply as is)
DEVICES = Res("devices.kubeedge.io", "v1beta1", "Device", "devices", True)
DEVICEMODELS = Res("devices.kubeedge.io", "v1beta1", "DeviceModel", "devicemodels", True)
DEVICESTATUSES = Res("devices.kubeedge.io", "v1beta1", "DeviceStatus", "devicestatuses", True)
OBJECTSYNCS = Res("reliablesyncs.kubeedge.io", "v1alpha1", "ObjectSync", "objectsyncs", True)
CLUSTEROBJECTSYNCS = Res(
    "reliablesyncs.kubeedge.io", "v1alpha1", "ClusterObjectSync", "clusterobjectsyncs", False
)

BUILTIN: tuple[Res, ...] = (
    NAMESPACES, NODES, PODS, CONFIGMAPS, SECRETS, SERVICES, ENDPOINTS, SERVICEACCOUNTS, EVENTS,
    LEASES, DEPLOYMENTS, REPLICASETS, REPLICATIONCONTROLLERS, DAEMONSETS, CRDS, APISERVICES,
    DEVICES, DEVICEMODELS, DEVICESTATUSES, OBJECTSYNCS, CLUSTEROBJECTSYNCS,
)  # fmt: skip


def lookup(api_version: str, kind: str) -> Res | None:
    """The Res for apiVersion/kind from what is known locally: kedge's list, else lightkube's models of
    the built-in kinds (None for anything else: the client asks the server's discovery)."""
    for res in BUILTIN:
        if res.api_version == api_version and res.kind == kind:
            return res
    try:
        model = resource_registry.load(api_version, kind)
    except (codecs.LoadResourceError, ValueError, ImportError):
        return None
    info = lkr.api_info(model)
    base = info.parent or info.resource
    namespaced = issubclass(model, (lkr.NamespacedResource, lkr.NamespacedSubResource))
    return Res(base.group, base.version, base.kind, info.plural, namespaced)


def res_from_crd(crd: dict[str, Any]) -> list[Res]:
    """Every served version of a CRD as Res."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    return [
        Res(spec["group"], v["name"], names["kind"], names["plural"], namespaced)
        for v in spec.get("versions") or []
        if v.get("served", True)
    ]


def load_yaml(text: str) -> list[dict[str, Any]]:
    """All objects in a multi-document YAML (flattening `*List` kinds), as dicts, in order."""
    out: list[dict[str, Any]] = []

    def add(items: Iterable[Any]) -> None:
        for doc in items:
            if not doc:
                continue
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                raise ValueError(f"not a Kubernetes object (needs apiVersion and kind): {str(doc)[:80]}")
            if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
                add(doc["items"])
            else:
                out.append(doc)

    add(yaml.safe_load_all(text))
    return out
