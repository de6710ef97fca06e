"""Unknown-field handling (fieldValidation Ignore/Warn/Strict, CRD pruning) and the few validations
clients notice. Unknown fields are always dropped before storing, as decoding into Go types does.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.context import Ctx
from runtime.apiserver.resources import ResourceType
from runtime.apiserver.status import ApiError, bad_request, invalid

Obj = dict[str, Any]

OBJECT_META = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}
_BASE = {"apiVersion", "kind", "metadata"}
_SPEC_STATUS = _BASE | {"spec", "status"}
TOP_LEVEL: dict[str, set[str]] = {
    "ConfigMap": _BASE | {"data", "binaryData", "immutable"},
    "Secret": _BASE | {"data", "stringData", "type", "immutable"},
    "Endpoints": _BASE | {"subsets"},
    "ServiceAccount": _BASE | {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "Role": _BASE | {"rules"},
    "ClusterRole": _BASE | {"rules", "aggregationRule"},
    "RoleBinding": _BASE | {"subjects", "roleRef"},
    "ClusterRoleBinding": _BASE | {"subjects", "roleRef"},
    "EndpointSlice": _BASE | {"addressType", "endpoints", "ports"},
    "PriorityClass": _BASE | {"value", "globalDefault", "description", "preemptionPolicy"},
}
for _k in (
    "Namespace",
    "Node",
    "Pod",
    "Service",
    "Lease",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "CustomResourceDefinition",
    "SelfSubjectAccessReview",
    "SelfSubjectReview",
):
    TOP_LEVEL[_k] = _SPEC_STATUS
TOP_LEVEL_CORE_EVENT = _BASE | {
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
}
TOP_LEVEL_EVENTS_V1 = _BASE | {
    "eventTime",
    "series",
    "reportingController",
    "reportingInstance",
    "action",
    "reason",
    "regarding",
    "related",
    "note",
    "type",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
}


def _allowed_top(rt: ResourceType) -> set[str] | None:
    if rt.kind == "Event":
        return TOP_LEVEL_EVENTS_V1 if rt.group else TOP_LEVEL_CORE_EVENT
    return TOP_LEVEL.get(rt.kind)


def check_fields(ctx: Ctx, rt: ResourceType, obj: Obj) -> Obj:
    """Drop unknown fields; report them as fieldValidation asks (400 for Strict, a warning for Warn)."""
    mode = ctx.query.get("fieldValidation", "Warn") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise bad_request(f'fieldValidation parameter "{mode}" must be one of "Ignore", "Warn", or "Strict"')
    unknown: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for k in list(meta):
            if k not in OBJECT_META:
                unknown.append(f"metadata.{k}")
                del meta[k]
    if rt.crd and rt.schema is not None:
        _prune(obj, rt.schema, "", unknown, root=True)
    else:
        allowed = _allowed_top(rt)
        if allowed is not None:
            for k in list(obj):
                if k not in allowed:
                    unknown.append(k)
                    del obj[k]
    if unknown and mode != "Ignore":
        texts = [f'unknown field "{u}"' for u in unknown]
        if mode == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(texts))
        ctx.warnings.extend(texts)
    return obj


def _prune(value: Any, schema: Obj, path: str, unknown: list[str], root: bool = False) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            props = schema.get("properties") or {}
            for k, sub in props.items():
                if k in value:
                    _prune(value[k], sub, f"{path}.{k}" if path else k, unknown)
            return
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if props is None and addl is None:
            if schema.get("type") == "object" and not root:
                for k in list(value):
                    unknown.append(f"{path}.{k}" if path else k)
                    del value[k]
            return
        for k in list(value):
            sub_path = f"{path}.{k}" if path else k
            if root and k in _BASE:
                continue
            if props is not None and k in props:
                _prune(value[k], props[k], sub_path, unknown)
            elif isinstance(addl, dict):
                _prune(value[k], addl, sub_path, unknown)
            elif addl is True:
                continue
            else:
                unknown.append(sub_path)
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{i}]", unknown)


def validate(rt: ResourceType, new: Obj, old: Obj | None) -> None:
    """The validations clients depend on; more belong here as they are found to matter."""
    name = (new.get("metadata") or {}).get("name", "")
    if rt.kind == "Pod" and not rt.group:
        containers = (new.get("spec") or {}).get("containers")
        if not containers:
            raise invalid(
                "Pod",
                name,
                "",
                [("spec.containers", "FieldValueRequired", "spec.containers: Required value")],
            )
        causes = []
        for i, c in enumerate(containers):
            if not isinstance(c, dict):
                continue
            if not c.get("name"):
                causes.append(
                    (
                        f"spec.containers[{i}].name",
                        "FieldValueRequired",
                        f"spec.containers[{i}].name: Required value",
                    )
                )
            if not c.get("image") and old is None:
                causes.append(
                    (
                        f"spec.containers[{i}].image",
                        "FieldValueRequired",
                        f"spec.containers[{i}].image: Required value",
                    )
                )
        if causes:
            raise invalid("Pod", name, "", causes)
    if rt.kind == "Pod" and not rt.group and old is not None:
        _pod_update(name, old, new)
    if rt.kind == "CustomResourceDefinition":
        from runtime.apiserver.crds import validate_crd

        validate_crd(new)


__all__ = ["ApiError", "check_fields", "validate"]


POD_UPDATE_FORBIDDEN = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def _pod_update(name: str, old: Obj, new: Obj) -> None:
    """ValidatePodUpdate: a pod's spec is immutable but for images, deadlines and added tolerations."""
    import copy

    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    if os_ == ns_:
        return
    mutated = copy.deepcopy(ns_)
    for field in ("containers", "initContainers"):
        olds, news = os_.get(field) or [], mutated.get(field) or []
        if len(olds) == len(news):
            for o, n in zip(olds, news, strict=True):
                if isinstance(o, dict) and isinstance(n, dict) and "image" in o:
                    n["image"] = o["image"]
    if "activeDeadlineSeconds" in ns_:
        mutated["activeDeadlineSeconds"] = os_.get("activeDeadlineSeconds")
        if mutated["activeDeadlineSeconds"] is None:
            del mutated["activeDeadlineSeconds"]
    old_tol = os_.get("tolerations") or []
    new_tol = ns_.get("tolerations") or []
    if all(t in new_tol for t in old_tol):
        if old_tol:
            mutated["tolerations"] = old_tol
        else:
            mutated.pop("tolerations", None)
    if mutated != os_:
        raise invalid("Pod", name, "", [("spec", "FieldValueForbidden", POD_UPDATE_FORBIDDEN)])
