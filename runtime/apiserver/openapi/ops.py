"""The REST operations of a resource type, as both OpenAPI documents (v2 and v3) list them.

kubectl reads operations, not just schemas: it looks for the PATCH operation tagged with a kind's
`x-kubernetes-group-version-kind` to learn the accepted patch types (`consumes` in v2, the request
body's media types in v3) and whether the `fieldValidation` query parameter is supported. The
operation ids follow kube-apiserver's naming (`patchCoreV1NamespacedConfigMap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.apiserver.registry.resources import ResourceType

WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


@dataclass(frozen=True)
class Operation:
    path: str
    method: str  # get put post patch delete
    action: str  # x-kubernetes-action: get list post put patch delete deletecollection
    operation_id: str
    query: tuple[str, ...]  # query parameters a client may check for
    body: bool  # takes the object (or a patch) as its body
    sub: str = ""


def patch_types(rt: ResourceType) -> list[str]:
    """Media types a PATCH accepts: strategic merge only for built-in kinds (Go struct tags)."""
    types = ["application/json-patch+json", "application/merge-patch+json"]
    if not rt.crd:
        types.append("application/strategic-merge-patch+json")
    return [*types, "application/apply-patch+yaml"]


def _group_word(group: str) -> str:
    """`rbac.authorization.k8s.io` -> `RbacAuthorization`, "" -> `Core`."""
    if not group:
        return "Core"
    base = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in base.replace("-", ".").split("."))


def operations(rt: ResourceType) -> list[Operation]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    collection = f"{prefix}{ns}/{rt.plural}"
    item = f"{collection}/{{name}}"
    scope = "Namespaced" if rt.namespaced else ""
    word = f"{_group_word(rt.group)}{rt.version[:1].upper()}{rt.version[1:]}"

    def op_id(verb: str, suffix: str = "", collection_word: str = "") -> str:
        return f"{verb}{word}{collection_word}{scope}{rt.kind}{suffix}"

    ops: list[Operation] = []
    verbs = set(rt.verbs)
    if "list" in verbs:
        ops.append(Operation(collection, "get", "list", op_id("list"), (), False))
    if "create" in verbs:
        ops.append(Operation(collection, "post", "post", op_id("create"), WRITE_PARAMS, True))
    if "deletecollection" in verbs:
        ops.append(
            Operation(collection, "delete", "deletecollection", op_id("delete", "", "Collection"), (), False)
        )
    item_ops = [
        ("get", "get", "read", (), False),
        ("update", "put", "replace", WRITE_PARAMS, True),
        ("patch", "patch", "patch", (*WRITE_PARAMS, "force"), True),
    ]
    for verb, method, word_verb, query, body in item_ops:
        if verb not in verbs:
            continue
        action = "put" if verb == "update" else verb
        ops.append(Operation(item, method, action, op_id(word_verb), query, body))
        if "status" in rt.subresources:
            status_id = op_id(word_verb, "Status")
            ops.append(Operation(f"{item}/status", method, action, status_id, query, body, "status"))
    if "delete" in verbs:
        ops.append(Operation(item, "delete", "delete", op_id("delete"), ("dryRun",), False))
    return ops


def path_parameters(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
