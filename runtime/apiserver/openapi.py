"""The OpenAPI v3 documents kubectl 1.32 reads before create/apply.

kubectl looks for a PATCH operation tagged with the kind's x-kubernetes-group-version-kind that takes the
`fieldValidation` query parameter; finding it, it leaves validation to the server (`fieldValidation=Strict`)
instead of validating client-side. Component schemas are deliberately not published for built-in kinds:
with no schema for a kind, `kubectl apply` computes strategic-merge patches from its compiled-in types,
which carry the real merge keys. CRD kinds publish their openAPIV3Schema.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from runtime.apiserver.resources import Registry, ResourceType

Obj = dict[str, Any]
JSON = "application/json"

_PARAMS = [
    {"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
    for n in ("dryRun", "fieldManager", "fieldValidation")
]


def _patch_types(rt: ResourceType) -> list[str]:
    types = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
    if not rt.crd:
        types.append("application/strategic-merge-patch+json")
    return types


def _paths_for(rt: ResourceType) -> dict[str, Obj]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    op_id = f"{rt.kind}{rt.version}"
    item: Obj = {}
    collection: Obj = {}
    ext = {"x-kubernetes-group-version-kind": gvk}
    if "create" in rt.verbs:
        collection["post"] = {
            "operationId": f"create{op_id}",
            "parameters": _PARAMS,
            **ext,
            "x-kubernetes-action": "post",
        }
    if "list" in rt.verbs:
        collection["get"] = {"operationId": f"list{op_id}", **ext, "x-kubernetes-action": "list"}
    if "get" in rt.verbs:
        item["get"] = {"operationId": f"read{op_id}", **ext, "x-kubernetes-action": "get"}
    if "update" in rt.verbs:
        item["put"] = {
            "operationId": f"replace{op_id}",
            "parameters": _PARAMS,
            **ext,
            "x-kubernetes-action": "put",
        }
    if "patch" in rt.verbs:
        item["patch"] = {
            "operationId": f"patch{op_id}",
            "parameters": [
                *_PARAMS,
                {"name": "force", "in": "query", "schema": {"type": "boolean"}, "uniqueItems": True},
            ],
            **ext,
            "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in _patch_types(rt)}},
            "x-kubernetes-action": "patch",
        }
    if "delete" in rt.verbs:
        item["delete"] = {"operationId": f"delete{op_id}", **ext, "x-kubernetes-action": "delete"}
    out: dict[str, Obj] = {}
    if collection:
        out[f"{prefix}{ns}/{rt.plural}"] = collection
    if item:
        out[f"{prefix}{ns}/{rt.plural}/{{name}}"] = item
    if "status" in rt.subresources:
        out[f"{prefix}{ns}/{rt.plural}/{{name}}/status"] = {
            k: {**v, "operationId": v["operationId"] + "Status"}
            for k, v in item.items()
            if k in ("get", "put", "patch")
        }
    return out


def _schema_for(rt: ResourceType) -> Obj | None:
    if not rt.crd:
        return None
    schema = dict(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(schema.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"type": "object"}
    schema["properties"] = props
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    return schema


class OpenAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._gen = -1
        self._docs: dict[str, bytes] = {}
        self._index = b""

    def _rebuild(self) -> None:
        groups: dict[str, list[ResourceType]] = {}
        for rt in self.registry.all():
            gv = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
            groups.setdefault(gv, []).append(rt)
        self._docs = {}
        index: Obj = {"paths": {}}
        for gv, types in groups.items():
            paths: Obj = {}
            schemas: Obj = {}
            for rt in types:
                paths.update(_paths_for(rt))
                s = _schema_for(rt)
                if s is not None:
                    schemas[f"{rt.group}.{rt.version}.{rt.kind}"] = s
            doc = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            }
            raw = orjson.dumps(doc)
            self._docs[gv] = raw
            digest = hashlib.sha512(raw).hexdigest()[:128].upper()
            index["paths"][gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
        self._index = orjson.dumps(index)
        self._gen = self.registry.generation

    def document(self, path: str, _hash: str) -> tuple[bytes | None, str]:
        if self._gen != self.registry.generation:
            self._rebuild()
        rest = path[len("/openapi/") :].strip("/")
        if rest == "v3":
            return self._index, JSON
        if rest.startswith("v3/"):
            return self._docs.get(rest[3:]), JSON
        return None, JSON
