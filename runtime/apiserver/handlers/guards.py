"""Checks the decoder and admission make before a write is computed: types of the envelope and
ObjectMeta (Go's json decoding answers them with 400), admission refusals with their own Status, and
Service address allocation against every stored Service."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from runtime.apiserver.admission.create import AdmissionError
from runtime.apiserver.admission.services import allocate_service
from runtime.apiserver.api import Api
from runtime.apiserver.http.status_errors import StatusError, bad_request, invalid
from runtime.apiserver.registry.resources import ResourceType

Obj = dict[str, Any]


def check_gvk(rt: ResourceType, obj: Obj) -> None:
    """Fill a missing apiVersion/kind from the URL; refuse a different one, as the decoder does; then
    the types of metadata and of the top-level sections (Go's json decoding answers them with 400)."""
    _check_type_meta(rt, obj)
    meta = obj.get("metadata", {})
    if meta is None:
        obj["metadata"] = meta = {}
    if not isinstance(meta, dict):
        raise bad_request(_unmarshal(meta, "metadata", "v1.ObjectMeta"))
    for key in ("spec", "status", "data"):
        v = obj.get(key)
        if v is not None and not isinstance(v, dict) and not (rt.crd and key == "data"):
            raise bad_request(_unmarshal(v, f"{rt.kind}.{key}", f"{rt.kind}{key.capitalize()}"))
    for key, want in META_TYPES.items():
        v = meta.get(key)
        if v is not None and not _META_CHECKS[want](v):
            raise bad_request(_unmarshal(v, f"metadata.{key}", _GO_TYPES[want]))
    check_types(rt, obj)


def _check_type_meta(rt: ResourceType, obj: Obj) -> None:
    av, kind = obj.get("apiVersion"), obj.get("kind")
    if av is not None and not isinstance(av, str):
        raise bad_request(_unmarshal(av, "apiVersion", "string"))
    if kind is not None and not isinstance(kind, str):
        raise bad_request(_unmarshal(kind, "kind", "string"))
    if not av:
        obj["apiVersion"] = rt.api_version
    elif av != rt.api_version:
        raise bad_request(
            f"the API version in the data ({av}) does not match the expected API version ({rt.api_version})"
        )
    if not kind:
        obj["kind"] = rt.kind
    elif kind != rt.kind:
        if rt.crd:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        # A built-in body is decoded as the kind it names, then converted to the URL's internal type
        internal = rt.group.split(".")[0] if rt.group else "core"
        raise bad_request(
            f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            f"converting ({rt.version}.{kind}) to ({internal}.{rt.kind}): unknown conversion"
        )


META_TYPES = {
    "name": "string",
    "generateName": "string",
    "namespace": "string",
    "uid": "string",
    "resourceVersion": "string",
    "selfLink": "string",
    "creationTimestamp": "string",
    "deletionTimestamp": "string",
    "generation": "int64",
    "deletionGracePeriodSeconds": "int64",
    "labels": "map",
    "annotations": "map",
    "finalizers": "strings",
    "ownerReferences": "objects",
    "managedFields": "objects",
}
_META_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "map": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "objects": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
}
_GO_TYPES = {
    "string": "string",
    "int64": "int64",
    "map": "map[string]string",
    "strings": "[]string",
    "objects": "[]v1.Object",
}


@contextlib.contextmanager
def admission(rt: ResourceType, name: str) -> Iterator[None]:
    """Admission and allocation refusals carry their own Status code and reason."""
    try:
        yield
    except AdmissionError as exc:
        if exc.code == 422 and exc.causes:
            raise invalid(rt.kind, name, rt.group, exc.causes) from exc
        msg = exc.message
        if exc.code == 403 and " is forbidden: " not in msg:
            qual = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            msg = f'{qual} "{name}" is forbidden: {msg}'
        details = {"name": name, "kind": rt.plural} if exc.code in (403, 422) else None
        raise StatusError(exc.code, exc.reason, msg, details) from exc


def allocate(api: Api, svc: Obj, old: Obj | None) -> Obj:
    """Cluster IPs and node ports, unique across every stored Service (as the service registry)."""
    ips: set[str] = set()
    ports: set[int] = set()
    me = ((svc.get("metadata") or {}).get("namespace"), (svc.get("metadata") or {}).get("name"))
    for key, e in api.store.items("/services", None):
        if key == me:
            continue
        spec = e.obj().get("spec") or {}
        ips.update(i for i in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])] if i and i != "None")
        ports.update(
            p["nodePort"] for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")
        )
    return allocate_service(svc, ips, ports, old=old)


@contextlib.contextmanager
def decoding() -> Iterator[None]:
    """Malformed nested fields surface as Python type errors in defaulting and admission; Kubernetes
    rejects such a body while decoding it, with 400."""
    try:
        yield
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        raise bad_request(f"the object provided is unrecognized: {type(exc).__name__}: {exc}") from exc


def _unmarshal(v: Any, field: str, go_type: str) -> str:
    js = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(
        type(v), "value"
    )
    return f"json: cannot unmarshal {js} into Go struct field {field} of type {go_type}"


# Go types of the pod fields clients write most; Kubernetes' typed decoding rejects anything else.
S, INT, B, M, OBJ, LS, LO = "string", "int64", "bool", "map[string]string", "object", "[]string", "[]object"
POD_SPEC = {
    **dict.fromkeys(("nodeSelector",), M),
    **dict.fromkeys(
        (
            "volumes",
            "containers",
            "initContainers",
            "ephemeralContainers",
            "imagePullSecrets",
            "tolerations",
            "hostAliases",
            "topologySpreadConstraints",
            "readinessGates",
            "resourceClaims",
            "schedulingGates",
        ),
        LO,
    ),
    **dict.fromkeys(
        (
            "restartPolicy",
            "dnsPolicy",
            "serviceAccountName",
            "serviceAccount",
            "nodeName",
            "hostname",
            "subdomain",
            "schedulerName",
            "priorityClassName",
            "runtimeClassName",
            "preemptionPolicy",
        ),
        S,
    ),
    **dict.fromkeys(("terminationGracePeriodSeconds", "activeDeadlineSeconds", "priority"), INT),
    **dict.fromkeys(
        (
            "automountServiceAccountToken",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "shareProcessNamespace",
            "enableServiceLinks",
            "setHostnameAsFQDN",
            "hostUsers",
        ),
        B,
    ),
    **dict.fromkeys(("securityContext", "affinity", "dnsConfig", "overhead", "os", "resources"), OBJ),
}
CONTAINER = {
    **dict.fromkeys(
        (
            "name",
            "image",
            "workingDir",
            "imagePullPolicy",
            "terminationMessagePath",
            "terminationMessagePolicy",
            "restartPolicy",
        ),
        S,
    ),
    **dict.fromkeys(("command", "args"), LS),
    **dict.fromkeys(("ports", "env", "envFrom", "volumeMounts", "volumeDevices", "resizePolicy"), LO),
    **dict.fromkeys(
        ("resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "securityContext"), OBJ
    ),
    **dict.fromkeys(("stdin", "stdinOnce", "tty"), B),
}
ITEMS = {
    "tolerations": {"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": INT},
    "env": {"name": S, "value": S, "valueFrom": OBJ},
    "ports": {"name": S, "protocol": S, "hostIP": S, "containerPort": INT, "hostPort": INT},
    "volumeMounts": {"name": S, "mountPath": S, "subPath": S, "readOnly": B},
    "volumes": {"name": S},
}
_GO_KIND: dict[str, type] = {S: str, INT: int, B: bool, M: dict, OBJ: dict, LS: list, LO: list}


def _typed(value: Any, want: str) -> bool:
    if want == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if want in (M, OBJ):
        return isinstance(value, dict) and (want == OBJ or all(isinstance(v, str) for v in value.values()))
    if want in (LS, LO):
        item = str if want == LS else dict
        return isinstance(value, list) and all(isinstance(v, item) for v in value)
    return isinstance(value, _GO_KIND[want])


def _check_fields(obj: Obj, types: dict[str, str], path: str, struct: str) -> None:
    for key, v in obj.items():  # the common case, all well typed, in one pass over what was sent
        want = types.get(key)
        if want is not None and v is not None and not _typed(v, want):
            break
    else:
        return
    for key, want in types.items():  # report the first bad field in the declared order
        v = obj.get(key)
        if v is not None and not _typed(v, want):
            raise bad_request(_unmarshal(v, f"{struct}.{path}.{key}", want))


def check_pod_spec(spec: Any, path: str) -> None:
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise bad_request(_unmarshal(spec, f"PodSpec.{path}", "v1.PodSpec"))
    _check_fields(spec, POD_SPEC, path, "PodSpec")
    for group in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(group) or []):
            _check_fields(c, CONTAINER, f"{path}.{group}[{i}]", "Container")
            for sub in ("env", "ports", "volumeMounts"):
                for j, item in enumerate(c.get(sub) or []):
                    _check_fields(item, ITEMS[sub], f"{path}.{group}[{i}].{sub}[{j}]", "Container")
    for sub in ("tolerations", "volumes"):
        for j, item in enumerate(spec.get(sub) or []):
            _check_fields(item, ITEMS[sub], f"{path}.{sub}[{j}]", "PodSpec")


def check_types(rt: ResourceType, obj: Obj) -> None:
    """The pod specs of built-in kinds, decoded as strictly as Go structs would be."""
    if rt.crd:
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if rt.kind == "Pod" and not rt.group:
        check_pod_spec(spec, "spec")
    elif rt.kind in ("Deployment", "ReplicaSet", "ReplicationController", "DaemonSet", "StatefulSet", "Job"):
        template = spec.get("template")
        if template is not None and not isinstance(template, dict):
            raise bad_request(_unmarshal(template, f"{rt.kind}Spec.spec.template", "v1.PodTemplateSpec"))
        if isinstance(template, dict):
            check_pod_spec(template.get("spec"), "spec.template.spec")
