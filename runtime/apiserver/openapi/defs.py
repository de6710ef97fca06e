"""Swagger 2.0 definitions of the served kinds, as kube-apiserver publishes them in /openapi/v2.

kubectl validates manifests against these (unknown field, wrong type, missing required field) and,
for `kubectl apply`, computes strategic-merge patches from their `x-kubernetes-patch-strategy` /
`x-kubernetes-patch-merge-key` extensions — so the field lists must be complete and the merge keys
exactly the Kubernetes struct tags. The field lists, types and required fields come from
lightkube-models (generated from the Kubernetes OpenAPI document); the patch tags, which it does not
carry, are listed here. Custom resources get their openAPIV3Schema converted the way the
apiextensions server converts it for v2.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any

Obj = dict[str, Any]

# patchStrategy / patchMergeKey struct tags of k8s.io/api, by Go struct, for the types the served kinds
# reach (checked against the tags compiled into kubectl 1.32).
_MERGE = "merge"
_BY_NAME = (_MERGE, "name")
_BY_TYPE = (_MERGE, "type")
_CONTAINER = {
    "ports": (_MERGE, "containerPort"),
    "env": _BY_NAME,
    "volumeMounts": (_MERGE, "mountPath"),
    "volumeDevices": (_MERGE, "devicePath"),
}
PATCH_TAGS: dict[str, dict[str, tuple[str, str]]] = {
    "ObjectMeta": {"finalizers": (_MERGE, ""), "ownerReferences": (_MERGE, "uid")},
    "PodSpec": {
        "containers": _BY_NAME,
        "initContainers": _BY_NAME,
        "ephemeralContainers": _BY_NAME,
        "volumes": ("merge,retainKeys", "name"),
        "imagePullSecrets": _BY_NAME,
        "hostAliases": (_MERGE, "ip"),
        "topologySpreadConstraints": (_MERGE, "topologyKey"),
        "resourceClaims": ("merge,retainKeys", "name"),
        "schedulingGates": _BY_NAME,
    },
    "Container": _CONTAINER,
    "EphemeralContainer": _CONTAINER,
    "ContainerStatus": {"allocatedResourcesStatus": _BY_NAME, "volumeMounts": (_MERGE, "mountPath")},
    "PodStatus": {
        "conditions": _BY_TYPE,
        "podIPs": (_MERGE, "ip"),
        "hostIPs": (_MERGE, "ip"),
        "resourceClaimStatuses": ("merge,retainKeys", "name"),
    },
    "NodeSpec": {"podCIDRs": (_MERGE, "")},
    "NodeStatus": {"conditions": _BY_TYPE, "addresses": _BY_TYPE},
    "ServiceSpec": {"ports": (_MERGE, "port")},
    "ServiceAccount": {"secrets": _BY_NAME},
    "DeploymentSpec": {"strategy": ("retainKeys", "")},
    **{
        s: {"conditions": _BY_TYPE}
        for s in (
            "NamespaceStatus",
            "ServiceStatus",
            "PersistentVolumeClaimStatus",
            "ReplicationControllerStatus",
            "DeploymentStatus",
            "ReplicaSetStatus",
            "DaemonSetStatus",
            "StatefulSetStatus",
            "JobStatus",
        )
    },
}

# lightkube-models module -> Go package, as the definition names spell it.
_PACKAGES = {
    "meta_v1": "io.k8s.apimachinery.pkg.apis.meta.v1",
    "runtime": "io.k8s.apimachinery.pkg.runtime",
    "util_intstr": "io.k8s.apimachinery.pkg.util.intstr",
    "resource": "io.k8s.apimachinery.pkg.api.resource",
    "apiextensions_v1": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
    "apiregistration_v1": "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1",
}
# Non-struct types (lightkube aliases) as Kubernetes defines them.
_ALIASES: dict[str, Obj] = {
    "Time": {"type": "string", "format": "date-time"},
    "MicroTime": {"type": "string", "format": "date-time"},
    "Quantity": {"type": "string"},
    "IntOrString": {"type": "string", "format": "int-or-string"},
    "JSON": {},
    "JSONSchemaPropsOrArray": {},
    "JSONSchemaPropsOrBool": {},
    "JSONSchemaPropsOrStringArray": {},
}
_PRIMITIVES: dict[str, Obj] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    # lightkube drops map value types; any value is accepted, as for a map of strings or quantities
    "dict": {"type": "object", "additionalProperties": {}},
}
# Kinds served only as subresource bodies.
SUBRESOURCE_KINDS = (("", "v1", "Binding"), ("policy", "v1", "Eviction"), ("autoscaling", "v1", "Scale"))


def module_for(group: str, version: str) -> str:
    return f"{group.split('.')[0] if group else 'core'}_{version}"


def definition_name(module: str, name: str) -> str:
    return f"{_PACKAGES.get(module) or 'io.k8s.api.' + module.replace('_', '.')}.{name}"


def _load(module: str) -> ModuleType | None:
    # Imported on first use: the model modules take ~0.2 s, paid when a definition is first built.
    from runtime.kube.models import MODELS

    return MODELS.get(module)


class _Builder:
    """Walks lightkube model classes from the served kinds, writing one definition per type reached."""

    def __init__(self) -> None:
        self.defs: Obj = {}

    def ref(self, module: str, name: str) -> Obj | None:
        full = definition_name(module, name)
        if full not in self.defs:
            mod = _load(module)
            cls = getattr(mod, name, None) if mod is not None else None
            if cls is None:
                return None
            self.defs[full] = {}  # placeholder: recursive types (JSONSchemaProps) refer to themselves
            self.defs[full] = self._definition(module, name, cls)
        return {"$ref": f"#/definitions/{full}"}

    def _definition(self, module: str, name: str, cls: Any) -> Obj:
        if not dataclasses.is_dataclass(cls):
            return dict(_ALIASES.get(name, {"type": "object"}))
        tags = PATCH_TAGS.get(name, {})
        props: Obj = {}
        required = []
        for f in dataclasses.fields(cls):
            key = f.metadata.get("json", f.name)
            prop = self._type(str(f.type), module)
            if key in tags:
                strategy, merge_key = tags[key]
                if merge_key:
                    prop["x-kubernetes-patch-merge-key"] = merge_key
                prop["x-kubernetes-patch-strategy"] = strategy
            props[key] = prop
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(key)
        out: Obj = {"type": "object", "properties": dict(sorted(props.items()))}
        if not props:
            return {"type": "object"}
        if required:
            out["required"] = sorted(required)
        return out

    def _type(self, ann: str, module: str) -> Obj:
        m = re.fullmatch(r"(Optional|List)\[(.*)\]", ann)
        if m:
            inner = self._type(m.group(2), module)
            return inner if m.group(1) == "Optional" else {"type": "array", "items": inner}
        if ann in _PRIMITIVES:
            return dict(_PRIMITIVES[ann])
        mod, _, name = ann.rpartition(".")
        found = self.ref(mod or module, name)
        return found if found is not None else {}


@functools.lru_cache(maxsize=8)
def builtin_definitions(kinds: tuple[tuple[str, str, str], ...]) -> Obj:
    """Definitions for the (group, version, kind) triples, their lists and everything they reach."""
    b = _Builder()
    for group, version, kind in (*kinds, *SUBRESOURCE_KINDS):
        module = module_for(group, version)
        for name in (kind, f"{kind}List"):
            if b.ref(module, name) is not None:
                gvk = {"group": group, "kind": name, "version": version}
                b.defs[definition_name(module, name)]["x-kubernetes-group-version-kind"] = [gvk]
    return dict(sorted(b.defs.items()))


# Custom resources


def crd_definition_name(group: str, version: str, kind: str) -> str:
    """`io.kubeedge.devices.v1beta1.Device` for devices.kubeedge.io/v1beta1 Device."""
    return ".".join([*reversed(group.split(".")), version, kind])


_DROPPED = ("allOf", "anyOf", "oneOf", "not", "nullable")
_OBJECT_META = {"$ref": "#/definitions/" + definition_name("meta_v1", "ObjectMeta")}


def _to_v2(s: Obj) -> Obj:
    """OpenAPI v3 structural schema -> v2 as apiextensions publishes it: no allOf/anyOf/oneOf/not;
    nullable and preserve-unknown-fields nodes lose their items/properties (kubectl would reject
    the values they allow); an array left without items loses its type."""
    out = {k: v for k, v in s.items() if k not in _DROPPED}
    if s.get("nullable"):
        for k in ("type", "items", "properties"):
            out.pop(k, None)
    if s.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("items", None)
        out.pop("properties", None)
    if isinstance(out.get("items"), dict):
        out["items"] = _to_v2(out["items"])
    elif out.get("type") == "array":
        out.pop("type")
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _to_v2(out["additionalProperties"])
    props = out.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: _to_v2(v) for k, v in props.items() if isinstance(v, dict)}
        nullable = {k for k, v in props.items() if isinstance(v, dict) and v.get("nullable")}
        if "required" in out:
            out["required"] = [r for r in out["required"] if r not in nullable]
    if out.get("x-kubernetes-embedded-resource") and not out.get("x-kubernetes-preserve-unknown-fields"):
        # an embedded object gets TypeMeta and ObjectMeta, unless kubectl must accept any field in it
        _add_type_meta(out.setdefault("properties", {}), _OBJECT_META)
        required = list(out.get("required", []))
        out["required"] = required + [k for k in ("kind", "apiVersion") if k not in required]
    return out


def _add_type_meta(props: Obj, metadata: Obj) -> None:
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = metadata


def crd_definition(group: str, version: str, kind: str, schema: Obj | None) -> Obj:
    """A custom resource's v2 definition. Without a schema, or with unknown fields preserved at the
    root, it is a bare object: kubectl then accepts any field."""
    gvk = {"x-kubernetes-group-version-kind": [{"group": group, "kind": kind, "version": version}]}
    if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
        return {"type": "object", **gvk}
    out = _to_v2(schema)
    props = dict(out.get("properties") or {})
    _add_type_meta(props, _OBJECT_META)
    out["properties"] = props
    return {**out, **gvk}


def kinds_of(triples: Iterable[tuple[str, str, str]]) -> tuple[tuple[str, str, str], ...]:
    return tuple(sorted(set(triples)))


_SHARED = _Builder()


def kind_definition(group: str, version: str, kind: str) -> tuple[str, Obj] | None:
    """A built-in kind's definition name and the (shared, grown on demand) definitions it reaches —
    what the server-side field validation walks, built once from the same source as /openapi/v2."""
    ref = _SHARED.ref(module_for(group, version), kind)
    return (ref["$ref"].rsplit("/", 1)[1], _SHARED.defs) if ref is not None else None
