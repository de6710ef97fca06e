"""Names of the resources kedge uses, and loaders that turn YAML/dicts into objects to apply.

Why a `Res` of our own: the client works on plain dicts (the wire protocol and the controllers carry
JSON), so it only needs the URL pieces. `Res` gives them without a lightkube import in the caller,
and `res_of()` accepts any lightkube resource class too (including the generic Device classes below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from lightkube import codecs
from lightkube.core import resource as lkr
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_global_resource,
    create_namespaced_resource,
    create_resources_from_crd,
)

G = TypeVar("G", GenericNamespacedResource, GenericGlobalResource)


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


ResLike = Res | type[lkr.Resource]


def res_of(res: ResLike) -> Res:
    """A `Res` from itself or from a lightkube resource class (subresource classes → their parent)."""
    if isinstance(res, Res):
        return res
    info = lkr.api_info(res)
    base = info.parent or info.resource
    namespaced = issubclass(res, (lkr.NamespacedResource, lkr.NamespacedSubResource))
    return Res(base.group, base.version, base.kind, info.plural, namespaced)


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


def _generic(res: Res, base: type[G], create: Callable[[str, str, str, str], type[G]]) -> type[G]:
    """lightkube's generic class for `res`: the registered one if any (a CRD already seen), else a new one."""
    existing = resource_registry.get(res.api_version, res.kind)
    if existing is not None:
        assert issubclass(existing, base)
        return existing
    return create(res.group, res.version, res.kind, res.plural)


def _namespaced(res: Res) -> type[GenericNamespacedResource]:
    return _generic(res, GenericNamespacedResource, create_namespaced_resource)


# lightkube generic resources for the KubeEdge kinds (registered, so codecs.from_dict knows them)
Device = _namespaced(DEVICES)
DeviceModel = _namespaced(DEVICEMODELS)
DeviceStatus = _namespaced(DEVICESTATUSES)
ObjectSync = _namespaced(OBJECTSYNCS)
ClusterObjectSync = _generic(CLUSTEROBJECTSYNCS, GenericGlobalResource, create_global_resource)


def lookup(api_version: str, kind: str) -> Res | None:
    """The Res for apiVersion/kind from what is known locally (built-ins, lightkube models, CRDs seen)."""
    for res in BUILTIN:
        if res.api_version == api_version and res.kind == kind:
            return res
    try:
        return res_of(resource_registry.load(api_version, kind))
    except (codecs.LoadResourceError, ValueError, ImportError):
        return None


def res_from_crd(crd: dict[str, Any]) -> list[Res]:
    """Every served version of a CRD as Res, and register lightkube generic resources for them."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    out = [
        Res(spec["group"], v["name"], names["kind"], names["plural"], namespaced)
        for v in spec.get("versions") or []
        if v.get("served", True)
    ]
    try:
        create_resources_from_crd(codecs.from_dict(crd))  # type: ignore[arg-type]
    except (ValueError, codecs.LoadResourceError, KeyError):
        pass  # already registered with another class; Res above is what kedge uses
    return out


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


def to_lightkube(obj: dict[str, Any]) -> lkr.Resource:
    """A dict as a lightkube object (standard models or registered generic resources)."""
    loaded: lkr.Resource = codecs.from_dict(obj)
    return loaded
