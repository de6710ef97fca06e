"""Built-in kinds' validation, as kube-apiserver's pkg/apis/*/validation runs it on every write.

Modules:
- fielderrors.py: FieldError (field.Error) constructors and `invalid_error`, the 422 Invalid Status
  rendered from a list of them.
- meta.py: label/annotation maps, port names and numbers, IPs (util/validation's checks in names.py).
- pods.py: pod specs and pod templates, pod update/status rules, quantities refused at decoding.
- workloads.py: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob (cron.py: schedules, time
  zones; gostruct.py: Go's %#v of an internal PodTemplateSpec, for a Job's immutable template).
- gocmpdiff.py (with gocmptext.py, the report's text layout): go-cmp's cmp.Diff of two internal
  structs, appended to the Pod and PersistentVolumeClaim spec-update refusals.
- core.py: ConfigMap, Secret, Service, PersistentVolumeClaim, Lease, Node, EndpointSlice,
  events.k8s.io Events, RBAC roles and bindings.

Flow: validation.validate (create, update, every patch type, apply, status) calls `errors_for` with the
new object, the stored one (None on create) and the subresource; a non-empty list becomes one 422 via
`fielderrors.invalid_error`. Decode-time refusals (quantities, Secret base64) are `decode_error`'s,
called where the body is decoded, and answered 400 as the decoder does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.apiserver.validation.rules import core, meta, pods, workloads
from runtime.apiserver.validation.rules.fielderrors import FieldError, forbidden, invalid_error

__all__ = ["FieldError", "decode_error", "errors_for", "forbidden", "invalid_error", "update_meta_errors"]

Obj = dict[str, Any]


Rule = Callable[[Obj, Obj | None, str], list[FieldError]]
# Each kind's validation: (new object, stored object or None on create, subresource) -> field errors.
_RULES: dict[tuple[str, str], Rule] = {
    ("", "Pod"): pods.pod,
    ("", "ConfigMap"): core.configmap,
    ("", "Secret"): core.secret,
    ("", "Service"): core.service,
    ("", "Node"): core.node,
    ("", "PersistentVolumeClaim"): core.pvc,
    ("apps", "Deployment"): workloads.deployment,
    ("apps", "ReplicaSet"): workloads.replicaset,
    ("apps", "DaemonSet"): workloads.daemonset,
    ("apps", "StatefulSet"): workloads.statefulset,
    ("batch", "Job"): workloads.job,
    ("batch", "CronJob"): workloads.cronjob,
    ("events.k8s.io", "Event"): core.event,
    ("coordination.k8s.io", "Lease"): core.lease,
    ("discovery.k8s.io", "EndpointSlice"): core.endpointslice,
    ("rbac.authorization.k8s.io", "Role"): core.role,
    ("rbac.authorization.k8s.io", "ClusterRole"): core.role,
    ("rbac.authorization.k8s.io", "RoleBinding"): core.rolebinding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): core.rolebinding,
}


def errors_for(group: str, kind: str, new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """The field errors of one built-in kind's write; [] for kinds without rules here."""
    rule = _RULES.get((group, kind))
    return rule(new, old, sub) if rule is not None else []


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
