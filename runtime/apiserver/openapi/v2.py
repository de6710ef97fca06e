"""The swagger 2.0 document served at /openapi/v2 (JSON, and gnostic protobuf via openapi_pb).

kubectl downloads it to validate what it sends (1.20: every create/apply; 1.32: `kind: List`
files, whose items it validates client-side) and, in `kubectl apply`, to compute strategic-merge
patches for kinds whose PATCH operation `consumes` application/strategic-merge-patch+json.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.openapi import defs
from runtime.apiserver.openapi.ops import Operation, operations, patch_types, path_parameters
from runtime.apiserver.registry.resources import ResourceType

Obj = dict[str, Any]
_PRODUCES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
_QUERY_TYPES = {"force": "boolean"}
_DESCRIPTIONS = {
    "list": "list or watch objects of kind {}",
    "post": "create a {}",
    "deletecollection": "delete collection of {}",
    "get": "read the specified {}",
    "put": "replace the specified {}",
    "patch": "partially update the specified {}",
    "delete": "delete a {}",
}


def _ref(rt: ResourceType) -> Obj:
    if rt.crd:
        name = defs.crd_definition_name(rt.group, rt.version, rt.kind)
    else:
        name = defs.definition_name(defs.module_for(rt.group, rt.version), rt.kind)
    return {"$ref": f"#/definitions/{name}"}


def _query(name: str) -> Obj:
    return {"name": name, "in": "query", "type": _QUERY_TYPES.get(name, "string"), "uniqueItems": True}


def _operation(rt: ResourceType, op: Operation, known: set[str]) -> Obj:
    ref = _ref(rt)
    has_schema = ref["$ref"].removeprefix("#/definitions/") in known
    out: Obj = {
        "description": _DESCRIPTIONS[op.action].format(rt.kind + (" status" if op.sub else "")),
        "operationId": op.operation_id,
        "produces": _PRODUCES,
        "schemes": ["https"],
        "tags": [f"{(rt.group.removesuffix('.k8s.io') or 'core').replace('.', '_')}_{rt.version}"],
    }
    if op.method in ("post", "put"):
        out["consumes"] = ["*/*"]
    elif op.method == "patch":
        out["consumes"] = patch_types(rt)
    params: list[Obj] = []
    if op.body:
        body_schema = {"type": "object"} if op.method == "patch" or not has_schema else ref
        params.append({"in": "body", "name": "body", "required": True, "schema": body_schema})
    params += [_query(q) for q in op.query]
    if params:
        out["parameters"] = params
    ok: Obj = {"description": "OK"}
    if has_schema and op.action != "list":
        ok["schema"] = ref
    out["responses"] = {"201" if op.action == "post" else "200": ok, "401": {"description": "Unauthorized"}}
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    return out


def _path_params(path: str) -> list[Obj]:
    params = [
        {"name": p, "in": "path", "required": True, "type": "string", "uniqueItems": True}
        for p in path_parameters(path)
    ]
    return [*params, {"name": "pretty", "in": "query", "type": "string", "uniqueItems": True}]


def build(types: list[ResourceType]) -> Obj:
    builtin = defs.kinds_of((rt.group, rt.version, rt.kind) for rt in types if not rt.crd)
    definitions: Obj = dict(defs.builtin_definitions(builtin))
    for rt in types:
        if rt.crd:
            name = defs.crd_definition_name(rt.group, rt.version, rt.kind)
            definitions[name] = defs.crd_definition(rt.group, rt.version, rt.kind, rt.schema)
    known = set(definitions)
    paths: Obj = {}
    for rt in types:
        for op in operations(rt):
            item = paths.setdefault(op.path, {"parameters": _path_params(op.path)})
            item[op.method] = _operation(rt, op, known)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            }
        },
        "security": [{"BearerToken": []}],
    }
