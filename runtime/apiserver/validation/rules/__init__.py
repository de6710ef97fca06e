"""Built-in kinds' validation, as kube-apiserver's pkg/apis/*/validation runs it on every write.

Modules:
- fielderrors.py: FieldError (field.Error) constructors and `invalid_error`, the 422 Invalid Status
  rendered from a list of them.
- meta.py: label/annotation maps, port names and numbers, IPs (util/validation's checks in names.py).
- pods.py: pod specs and pod templates, pod update/status rules, quantities refused at decoding.
- workloads.py: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob (cron.py: schedules, time
  zones).
- core.py: ConfigMap, Secret, Service, PersistentVolumeClaim, Lease, Node, EndpointSlice,
  events.k8s.io Events, RBAC roles and bindings.

Flow: validation.validate (create, update, every patch type, apply, status) calls `errors_for` with the
new object, the stored one (None on create) and the subresource; a non-empty list becomes one 422 via
`fielderrors.invalid_error`. Decode-time refusals (quantities, Secret base64) are `decode_error`'s,
called where the body is decoded, and answered 400 as the decoder does.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.validation.rules import core, meta, pods, workloads
from runtime.apiserver.validation.rules.fielderrors import FieldError, forbidden, invalid_error

__all__ = ["FieldError", "decode_error", "errors_for", "forbidden", "invalid_error", "update_meta_errors"]

Obj = dict[str, Any]


def errors_for(group: str, kind: str, new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """The field errors of one built-in kind's write; [] for kinds without rules here."""
    match (group, kind):
        case ("", "Pod"):
            return pods.pod(new, old, sub)
        case ("", "ConfigMap"):
            return core.configmap(new, old, sub)
        case ("", "Secret"):
            return core.secret(new, old, sub)
        case ("", "Service"):
            return core.service(new, old, sub)
        case ("", "Node"):
            return core.node(new, old, sub)
        case ("apps", "Deployment"):
            return workloads.deployment(new, old, sub)
        case ("apps", "ReplicaSet"):
            return workloads.replicaset(new, old, sub)
        case ("apps", "DaemonSet"):
            return workloads.daemonset(new, old, sub)
        case ("apps", "StatefulSet"):
            return workloads.statefulset(new, old, sub)
        case ("batch", "Job"):
            return workloads.job(new, old, sub)
        case ("batch", "CronJob"):
            return workloads.cronjob(new, old, sub)
        case ("", "PersistentVolumeClaim"):
            return core.pvc(new, old, sub)
        case ("events.k8s.io", "Event"):
            return core.event(new, old, sub)
        case ("coordination.k8s.io", "Lease"):
            return core.lease(new, old, sub)
        case ("discovery.k8s.io", "EndpointSlice"):
            return core.endpointslice(new, old, sub)
        case ("rbac.authorization.k8s.io", "Role" | "ClusterRole"):
            return core.role(new, old, sub)
        case ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding"):
            return core.rolebinding(new, old, sub)
    return []


# Kinds whose update validation runs their create validation again (ValidatePodUpdate calls
# validatePodMetadataAndSpec, ValidateConfigMapUpdate calls ValidateConfigMap, ...).
_REVALIDATED = {("", "Pod"), ("", "ConfigMap"), ("", "Secret"), ("", "Service")}


def update_meta_errors(group: str, kind: str, new: Obj, sub: str) -> list[FieldError]:
    """The label and annotation errors an update repeats before the kind's own: rest.BeforeUpdate's
    common checks (ValidateObjectMetaAccessor and its Update variant: two copies), and one more where
    the kind's update validation runs both ValidateObjectMetaUpdate and its create validation (or a
    status update, whose rules begin with ValidateObjectMetaUpdate)."""
    common = meta.object_meta(new)
    if not common:
        return []
    extra = sub == "status" or (group, kind) in _REVALIDATED
    return common * (3 if extra else 2)


def decode_error(group: str, kind: str, obj: Obj) -> str | None:
    """Why the decoder would refuse this body (400), or None: quantities, Secret data's base64."""
    if not group and kind == "Secret":
        return core.base64_error(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if not group and kind == "Pod":
        return pods.quantity_error(spec)
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    if isinstance(template, dict):
        return pods.quantity_error(template.get("spec"))
    return None
