"""The registry of kinds the server serves: built-in kinds plus CRD-defined ones added at run time.

One `ResourceType` per (group, version, plural). A kind served in several versions (CRDs) shares one
storage `key` so every version sees the same objects, as in Kubernetes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_CREATE = ("create", "get", "list")


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding", "token", "finalize"
    categories: tuple[str, ...] = ()
    generation: bool = False  # metadata.generation maintained (bumped on spec change)
    reset_status_on_create: bool = False
    create_on_update: bool = False  # PUT of a missing object creates it
    unconditional_update: bool = True  # PUT without resourceVersion allowed
    return_deleted: bool = False  # DELETE answers the object instead of a Status
    name_is_label: bool = False  # name must be an RFC 1123 label (namespaces, services)
    crd: bool = False
    storage_version: str = ""  # for CRDs: version written to storage
    printer_columns: list[dict[str, Any]] | None = None
    schema: dict[str, Any] | None = None
    stored_only: bool = True  # no controller in this issue acts on it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: group/plural (version-independent)."""
        return f"{self.group}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery_entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        main["storageVersionHash"] = _hash(self.key + self.version)
        out.append(main)
        for sub in self.subresources:
            entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
            }
            if sub == "status":
                entry.update(kind=self.kind, verbs=["get", "patch", "update"])
            elif sub == "scale":
                entry.update(
                    group="autoscaling", version="v1", kind="Scale", verbs=["get", "patch", "update"]
                )
            elif sub == "binding":
                entry.update(kind="Binding", verbs=["create"])
            elif sub == "token":
                entry.update(
                    group="authentication.k8s.io", version="v1", kind="TokenRequest", verbs=["create"]
                )
            elif sub == "finalize":
                entry.update(kind=self.kind, verbs=["update"])
            elif sub == "eviction":
                entry.update(group="policy", version="v1", kind="Eviction", verbs=["create"])
            elif sub == "log":
                entry.update(kind="Pod", verbs=["get"])
            elif sub in _STREAM_KINDS:
                entry.update(kind=_STREAM_KINDS[sub], verbs=["create", "get"])
            out.append(entry)
        return out


_STREAM_KINDS = {
    "attach": "PodAttachOptions",
    "exec": "PodExecOptions",
    "portforward": "PodPortForwardOptions",
}


def _hash(s: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(s.encode()).digest()[:8]).decode()


def _r(group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced, **kw)


def _workload(
    group: str, plural: str, kind: str, short_names: tuple[str, ...], scale: bool = True
) -> ResourceType:
    """A controller-managed kind: in category `all`, a status (and scale) subresource, metadata.generation
    bumped on spec changes, status reset on create."""
    return _r(
        group,
        "v1",
        plural,
        kind,
        True,
        short_names=short_names,
        categories=("all",),
        subresources=("scale", "status") if scale else ("status",),
        generation=True,
        reset_status_on_create=True,
    )


def builtin_types() -> list[ResourceType]:
    """Every built-in kind, in the order discovery lists them."""
    st = ("status",)
    return [
        _r(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            short_names=("ns",),
            subresources=("finalize", "status"),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            return_deleted=True,
            name_is_label=True,
        ),
        _r("", "v1", "nodes", "Node", False, short_names=("no",), subresources=st, return_deleted=True),
        _r(
            "",
            "v1",
            "pods",
            "Pod",
            True,
            short_names=("po",),
            categories=("all",),
            subresources=("attach", "binding", "eviction", "exec", "log", "portforward", "status"),
            return_deleted=True,
        ),
        _workload("", "replicationcontrollers", "ReplicationController", ("rc",)),
        _r("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
        _r(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            True,
            short_names=("pvc",),
            subresources=st,
            reset_status_on_create=True,
        ),
        _r("", "v1", "secrets", "Secret", True),
        _r(
            "",
            "v1",
            "services",
            "Service",
            True,
            short_names=("svc",),
            categories=("all",),
            subresources=st,
            return_deleted=True,
            name_is_label=True,
        ),
        _r("", "v1", "endpoints", "Endpoints", True, short_names=("ep",), create_on_update=True),
        _r("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",), subresources=("token",)),
        _r("", "v1", "events", "Event", True, short_names=("ev",), create_on_update=True),
        _r("coordination.k8s.io", "v1", "leases", "Lease", True, create_on_update=True),
        _workload("apps", "deployments", "Deployment", ("deploy",)),
        _workload("apps", "replicasets", "ReplicaSet", ("rs",)),
        _workload("apps", "daemonsets", "DaemonSet", ("ds",), scale=False),
        _workload("apps", "statefulsets", "StatefulSet", ("sts",)),
        _workload("batch", "cronjobs", "CronJob", ("cj",), scale=False),
        _workload("batch", "jobs", "Job", (), scale=False),
        _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _r(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "flowschemas",
            "FlowSchema",
            False,
            subresources=st,
            generation=True,
        ),
        _r(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "prioritylevelconfigurations",
            "PriorityLevelConfiguration",
            False,
            subresources=st,
            generation=True,
        ),
        _r(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            False,
            verbs=("create",),
        ),
        _r(
            "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=("create",)
        ),
        _r("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=("create",)),
        _r(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            False,
            verbs=("create",),
        ),
        _r(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            subresources=st,
            generation=True,
            categories=("api-extensions",),
        ),
        _r(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            False,
            subresources=st,
            categories=("api-extensions",),
            reset_status_on_create=True,
        ),
        _r("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",), create_on_update=True),
        _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, generation=True),
        _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, short_names=("pc",)),
    ]


# Kinds whose create is a review (answered, never stored).
REVIEW_KINDS = {"selfsubjectaccessreviews", "selfsubjectreviews", "tokenreviews", "subjectaccessreviews"}


class Registry:
    """Lookup by (group, version, plural) and by storage key; CRD kinds come and go at run time."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self.generation = 0  # bumped on every change, so cached discovery/openapi docs are rebuilt
        for rt in builtin_types():
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self.generation += 1

    def remove_key(self, key: str) -> None:
        for gvr, rt in list(self._by_gvr.items()):
            if rt.key == key and rt.crd:
                del self._by_gvr[gvr]
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def by_key(self, key: str) -> ResourceType | None:
        """The storage-version type of a key (the first registered one for built-ins)."""
        found = None
        for rt in self._by_gvr.values():
            if rt.key == key:
                if not rt.crd or rt.version == rt.storage_version:
                    return rt
                found = found or rt
        return found

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, preferred first; core group excluded. Built-in groups keep their
        registration order; a group served by CRDs is ordered as the real server orders it (kube-aware:
        GA > beta > alpha, higher numbers first), so kubectl picks v1beta1 over v1alpha2."""
        out: dict[str, list[str]] = {}
        crd_groups: set[str] = set()
        for rt in self._by_gvr.values():
            if rt.group:
                vs = out.setdefault(rt.group, [])
                if rt.version not in vs:
                    vs.append(rt.version)
                if rt.crd:
                    crd_groups.add(rt.group)
        for group in crd_groups:
            out[group].sort(key=kube_version_priority)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version]


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def kube_version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key, most preferred first: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (by
    name), as Kubernetes' CompareKubeAwareVersionStrings orders versions."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), version)
