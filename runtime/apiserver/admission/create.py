"""Defaulting and built-in admission, applied on create as kube-apiserver applies them.

A real server fills in defaults when it decodes a request (pkg/apis/*/v1/defaults.go), then runs the
mutating admission plugins (ServiceAccount, Priority, DefaultTolerationSeconds) and the registry's
PrepareForCreate (pod status reset to Pending with its QoS class, namespace finalizers). Clients and
controllers depend on every one of those fields being there, so this module reproduces them; it does
no I/O: the ServiceAccount's own automount flag is passed in by the caller.

`default_object` is the decode-time defaulting alone (also run on update and patch results);
`admit_create` adds the create-only steps.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from runtime.apiserver.admission.defaults import default_object
from runtime.apiserver.admission.pods import default_container, default_pod, default_pod_spec, image_tag
from runtime.quantity import QuantityError, parse_quantity

__all__ = [
    "AdmissionError",
    "admit_create",
    "admit_pod_create",
    "default_container",
    "default_object",
    "default_pod",
    "default_pod_spec",
    "image_tag",
    "pod_qos_class",
    "token_volume",
]

Obj = dict[str, Any]

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String: no vowels, no confusable digits
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


class AdmissionError(Exception):
    """Admission refused the object; `code` and `reason` are the Status kube-apiserver returns."""

    def __init__(
        self,
        message: str,
        code: int = 403,
        reason: str = "Forbidden",
        causes: list[tuple[str, str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.causes = causes  # a 422's field errors: (field, reason, "field: detail")


def random_suffix(n: int = 5) -> str:
    """n letters of utilrand's alphabet, uniform, from one draw of the system RNG (one syscall)."""
    size = len(_RAND_ALPHABET)
    v = secrets.randbelow(size**n)
    out = []
    for _ in range(n):
        v, i = divmod(v, size)
        out.append(_RAND_ALPHABET[i])
    return "".join(out)


# ---------------------------------------------------------------- create-time admission


def _qos_sum(pod: Obj) -> tuple[dict[str, Fraction], dict[str, Fraction], bool]:
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for name, q in (res.get("requests") or {}).items():
            if name in ("cpu", "memory"):
                v = parse_quantity(q)
                if v != 0:
                    requests[name] = requests[name] + v if name in requests else v
        seen = set()
        for name, q in (res.get("limits") or {}).items():
            if name in ("cpu", "memory"):
                v = parse_quantity(q)
                if v != 0:
                    seen.add(name)
                    limits[name] = limits[name] + v if name in limits else v
        if seen != {"cpu", "memory"}:
            guaranteed = False
    return requests, limits, guaranteed


def pod_qos_class(pod: Obj) -> str:
    """qos.GetPodQOS over containers and init containers (cpu and memory only)."""
    try:
        requests, limits, guaranteed = _qos_sum(pod)
    except QuantityError:
        return "BestEffort"
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def token_volume(name: str) -> Obj:
    """The projected volume the ServiceAccount admission plugin adds (TokenVolumeSource)."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


def _mount_token(spec: Obj) -> None:
    volumes = spec.get("volumes") or []
    existing = next(
        (v["name"] for v in volumes if str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)), None
    )
    name = existing or TOKEN_VOLUME_PREFIX + random_suffix()
    needs_volume = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
            c["volumeMounts"] = mounts
            needs_volume = True
    if needs_volume and existing is None:
        volumes.append(token_volume(name))
        spec["volumes"] = volumes


def _default_tolerations(spec: Obj) -> None:
    """DefaultTolerationSeconds: tolerate not-ready/unreachable NoExecute for 300 s unless already."""
    tols = spec.get("tolerations") or []

    def tolerated(key: str) -> bool:
        return any(t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "") for t in tols)

    add = [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        if not tolerated(key)
    ]
    if add:
        spec["tolerations"] = tols + add


def _priority(spec: Obj, classes: dict[str, int] | None) -> None:
    known = {**SYSTEM_PRIORITY_CLASSES, **(classes or {})}
    name = spec.get("priorityClassName") or ""
    if name:
        if name not in known:
            raise AdmissionError(f"no PriorityClass with name {name} was found")
        value = known[name]
    else:
        value = 0
    if spec.get("priority") is not None and spec["priority"] != value:
        raise AdmissionError(
            f"the integer value of priority ({spec['priority']}) must not be provided in pod spec; priority "
            f"admission controller computed {value} from the given PriorityClass name"
        )
    spec["priority"] = value
    if not spec.get("preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"


def admit_pod_create(
    pod: Obj,
    sa_automount: bool | None = None,
    *,
    priority_classes: dict[str, int] | None = None,
    owned: bool = False,
    defaulted: bool = False,
) -> Obj:
    """A pod as a real server stores it on create: defaults, ServiceAccount, Priority,
    DefaultTolerationSeconds, then status reset to Pending with its QoS class. A copy, unless the
    caller `owned` the input outright (nothing else refers to it): then it is changed in place, and
    not defaulted again when the caller says it already was (`defaulted`: defaulting is idempotent)."""
    if owned:
        out = pod
        if not defaulted:
            default_pod(out)
    else:
        out = default_object("pods", pod)
    spec = out["spec"]
    mirror = "kubernetes.io/config.mirror" in ((out.get("metadata") or {}).get("annotations") or {})
    if not mirror:
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = "default"
        spec["serviceAccount"] = spec["serviceAccountName"]
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa_automount if sa_automount is not None else True
        if automount:
            _mount_token(spec)
    _priority(spec, priority_classes)
    _default_tolerations(spec)
    out["status"] = {"phase": "Pending", "qosClass": pod_qos_class(out)}
    return out


def _namespace_create(ns: Obj) -> Obj:
    out = default_object("namespaces", ns)
    out["status"] = {"phase": "Active"}
    fins = list((out.get("spec") or {}).get("finalizers") or [])
    if "kubernetes" not in fins:
        fins.append("kubernetes")
    out.setdefault("spec", {})["finalizers"] = fins
    return out


def _reset_status(resource: str, empty: Obj) -> Callable[[Obj], Obj]:
    def fn(obj: Obj) -> Obj:
        out = default_object(resource, obj)
        out["status"] = copy.deepcopy(empty)
        return out

    return fn


def _job_create(job: Obj) -> Obj:
    """The Job strategy on create: a fresh status and, unless the selector is manual, the generated
    selector on the controller-uid label, which the pod template (and the Job, when it has no labels
    of its own) gets with the job-name labels."""
    out = default_object("jobs", job)
    out["status"] = {}
    meta, spec = out["metadata"], out.setdefault("spec", {})
    if spec.get("manualSelector"):
        return out
    uid, name = meta.get("uid", ""), meta.get("name", "")
    generated = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    tmeta = spec.setdefault("template", {}).setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **generated}
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if not meta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return out


def _crd_create(crd: Obj) -> Obj:
    """The CRD strategy's PrepareForCreate: a fresh status naming the storage version (the typed
    zero values of its other fields serialised); the CRD controllers fill in names and conditions."""
    out = default_object("customresourcedefinitions", crd)
    versions = (out.get("spec") or {}).get("versions") or []
    stored = [v.get("name") for v in versions if isinstance(v, dict) and v.get("storage")]
    out["status"] = {
        "conditions": None,
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": stored,
    }
    return out


def _node_create(node: Obj) -> Obj:
    """TaintNodesByCondition: a new node is not-ready (NoSchedule) until node lifecycle says otherwise."""
    out = default_object("nodes", node)
    taints = out["spec"].get("taints") or []
    if not any(
        t.get("key") == "node.kubernetes.io/not-ready" and t.get("effect") == "NoSchedule" for t in taints
    ):
        out["spec"]["taints"] = [*taints, {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    return out


def _pvc_create(pvc: Obj) -> Obj:
    """A new claim is Pending (the registry's PrepareForCreate), and StorageObjectInUseProtection adds
    its finalizer."""
    out = default_object("persistentvolumeclaims", pvc)
    out["status"] = {"phase": "Pending"}
    finalizers = out["metadata"].setdefault("finalizers", [])
    if "kubernetes.io/pvc-protection" not in finalizers:
        finalizers.append("kubernetes.io/pvc-protection")
    return out


_CREATE: dict[str, Callable[[Obj], Obj]] = {
    "persistentvolumeclaims": _pvc_create,
    "nodes": _node_create,
    "namespaces": _namespace_create,
    "deployments": _reset_status("deployments", {}),
    "replicasets": _reset_status("replicasets", {"replicas": 0}),  # the one non-omitempty field
    "replicationcontrollers": _reset_status("replicationcontrollers", {"replicas": 0}),
    "apiservices": _reset_status("apiservices", {}),
    "daemonsets": _reset_status(
        "daemonsets",
        {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0},
    ),
    "statefulsets": _reset_status("statefulsets", {"availableReplicas": 0, "replicas": 0}),
    "services": _reset_status("services", {"loadBalancer": {}}),
    "customresourcedefinitions": _crd_create,
    "jobs": _job_create,
}


def admit_create(resource: str, obj: Obj, *, sa_automount: bool | None = None) -> Obj:
    """Everything a real server does to a new object of `resource` before storing it (a copy)."""
    if resource == "pods":
        return admit_pod_create(obj, sa_automount)
    fn = _CREATE.get(resource)
    if fn is not None:
        return fn(obj)
    return default_object(resource, obj)


def admit_create_tracked(
    resource: str,
    obj: Obj,
    *,
    manager: str,
    sa_automount: bool | None = None,
    api_version: str | None = None,
    time: str | None = None,
) -> Obj:
    """The create path in the real server's order: decode-time defaults, then managedFields (the writer
    owns what it sent plus the defaults), then admission (fields the plugins add belong to nobody)."""
    from runtime.apiserver.patch.apply import update_managed_fields

    tracked = update_managed_fields(
        None, default_object(resource, obj), manager=manager, api_version=api_version, time=time
    )
    return admit_create(resource, tracked, sa_automount=sa_automount)
