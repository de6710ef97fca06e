"""Decode-time defaults (pkg/apis/*/v1/defaults.go), applied to every write, as a real server decodes.

kube-apiserver runs the defaulting functions whenever it decodes an object — on create, update and on
the result of every patch — so these are idempotent and separate from create-only admission. Which
defaults land on pods only (SetDefaults_Pod) and which on every pod template (SetDefaults_PodSpec) is
kept exactly: a Deployment's template gets no enableServiceLinks and no requests copied from limits.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from runtime.apiserver.admission.pods import default_pod, default_pod_spec, default_resources
from runtime.apiserver.admission.typed import typed_node

Obj = dict[str, Any]


def _typed_meta(holder: Obj) -> None:
    """An embedded ObjectMeta as Go serialises it: its creationTimestamp (a struct, never omitted) is
    `null` until the object is created from it."""
    meta = holder.setdefault("metadata", {})
    if isinstance(meta, dict) and "creationTimestamp" not in meta:
        meta["creationTimestamp"] = None


def _template_spec(obj: Obj) -> None:
    tpl = obj.setdefault("spec", {}).setdefault("template", {})
    _typed_meta(tpl)
    default_pod_spec(tpl.setdefault("spec", {}))


def _default_deployment(d: Obj) -> None:
    spec = d.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template_spec(d)


def _default_replicaset(rs: Obj) -> None:
    spec = rs.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template_spec(rs)


def _default_replicationcontroller(rc: Obj) -> None:
    """SetDefaults_ReplicationController: selector and labels from the template's labels when empty."""
    spec = rc.setdefault("spec", {})
    template = spec.get("template")
    labels = ((template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None) or None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


def _default_daemonset(ds: Obj) -> None:
    spec = ds.setdefault("spec", {})
    us = spec.setdefault("updateStrategy", {})
    if not us.get("type"):
        us["type"] = "RollingUpdate"
    if us["type"] == "RollingUpdate":
        ru = us.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    # apps/v1 carries the internal templateGeneration as this annotation: 1 for a new DaemonSet
    # (registry/objects.prepare_update raises it when an update changes the template)
    meta = ds.setdefault("metadata", {})
    if isinstance(meta, dict):
        annotations = meta.get("annotations") or {}
        annotations.setdefault("deprecated.daemonset.template.generation", "1")
        meta["annotations"] = annotations
    _template_spec(ds)


def _default_job(job: Obj) -> None:
    """SetDefaults_Job (batch/v1): one completion at a time, 6 retries, non-indexed, not suspended."""
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    _template_spec(job)


def _default_statefulset(ss: Obj) -> None:
    spec = ss.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    us = spec.setdefault("updateStrategy", {})
    if not us.get("type"):
        us["type"] = "RollingUpdate"
    if us["type"] == "RollingUpdate":
        us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):  # a PersistentVolumeClaim, defaulted as one
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            _typed_meta(claim)
            _default_pvc(claim)
            claim.setdefault("status", {}).setdefault("phase", "Pending")
    _template_spec(ss)


def _default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        cfg.setdefault("timeoutSeconds", 10800)
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in spec.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    stype = spec["type"]
    external = stype in ("NodePort", "LoadBalancer") or bool(spec.get("externalIPs"))
    if external and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _default_endpoints(ep: Obj) -> None:
    for subset in ep.get("subsets") or []:
        for port in subset.get("ports") or []:
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def _default_event(ev: Obj) -> None:
    """A core/v1 Event as its typed form serialises: eventTime (a struct) null, the reporting fields
    (plain strings) empty."""
    if ev.get("apiVersion", "v1") != "v1":
        return
    ev.setdefault("eventTime", None)
    ev.setdefault("reportingComponent", "")
    ev.setdefault("reportingInstance", "")


def _default_crd(crd: Obj) -> None:
    """apiextensions v1 SetDefaults_CustomResourceDefinitionSpec: the singular is the kind in lower
    case, the list kind `<kind>List`, the conversion strategy None."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind") or "", str):
        if not names.get("singular"):
            names["singular"] = (names.get("kind") or "").lower()
        if not names.get("listKind") and names.get("kind"):
            names["listKind"] = names["kind"] + "List"
    if not spec.get("conversion"):
        spec["conversion"] = {"strategy": "None"}


def _default_namespace(ns: Obj) -> None:
    meta = ns.setdefault("metadata", {})
    if meta.get("name"):
        labels = meta.get("labels") or {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
        meta["labels"] = labels
    status = ns.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Active"


def _default_secret(s: Obj) -> None:
    """Convert_v1_Secret_To_core_Secret: stringData overwrites data (base64) and is never stored."""
    if not s.get("type"):
        s["type"] = "Opaque"
    string_data = s.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = s.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        s["data"] = data


def _default_node(n: Obj) -> None:
    typed_node(n)
    status = n.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])
    for key in ("capacity", "allocatable"):
        if isinstance((status or {}).get(key), dict):
            default_resources({"limits": status[key]})  # type: ignore[index]


def _default_cronjob(cj: Obj) -> None:
    """SetDefaults_CronJob; the job template's pod spec as every pod template (no Job defaults there)."""
    spec = cj.setdefault("spec", {})
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.setdefault("jobTemplate", {})
    _typed_meta(job_template)
    job_spec = job_template.setdefault("spec", {})
    _typed_meta(job_spec.setdefault("template", {}))
    default_pod_spec(job_spec["template"].setdefault("spec", {}))


def _default_pvc(pvc: Obj) -> None:
    spec = pvc.setdefault("spec", {})
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"


def _default_binding(b: Obj) -> None:
    """SetDefaults_Subject: User and Group subjects belong to the RBAC API group."""
    for s in b.get("subjects") or []:
        if isinstance(s, dict) and not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = "rbac.authorization.k8s.io"


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "rolebindings": _default_binding,
    "clusterrolebindings": _default_binding,
    "cronjobs": _default_cronjob,
    "persistentvolumeclaims": _default_pvc,
    "pods": default_pod,
    "podtemplates": lambda o: default_pod_spec(o.setdefault("template", {}).setdefault("spec", {})),
    "deployments": _default_deployment,
    "replicasets": _default_replicaset,
    "replicationcontrollers": _default_replicationcontroller,
    "daemonsets": _default_daemonset,
    "statefulsets": _default_statefulset,
    "jobs": _default_job,
    "services": _default_service,
    "endpoints": _default_endpoints,
    "namespaces": _default_namespace,
    "secrets": _default_secret,
    "nodes": _default_node,
    "customresourcedefinitions": _default_crd,
    "events": _default_event,
}


_SCALARS = (str, int, float, bool, type(None))


def json_copy(value: Any) -> Any:
    """copy.deepcopy for decoded JSON (dicts, lists, scalars) at a fraction of its cost (no memo);
    any other type is handed to deepcopy."""
    t = type(value)
    if t is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if t is list:
        return [json_copy(v) for v in value]
    if t in _SCALARS:
        return value
    return copy.deepcopy(value)


def default_object(resource: str, obj: Obj, *, owned: bool = False) -> Obj:
    """Decode-time defaults for `resource` (plural name); a copy, the input is untouched — unless the
    caller `owned` it (freshly decoded, referenced nowhere else): then it is defaulted in place."""
    out = obj if owned else json_copy(obj)
    fn = _DEFAULTERS.get(resource)
    if fn is not None:
        fn(out)
    return out
