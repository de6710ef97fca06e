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

import base64
import copy
import secrets
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from runtime.apiserver.quantity import QuantityError, canonical_quantity, parse_quantity
from runtime.apiserver.typed import typed_node, typed_pod

Obj = dict[str, Any]

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String: no vowels, no confusable digits
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


class AdmissionError(Exception):
    """Admission refused the object; `code` and `reason` are the Status kube-apiserver returns."""

    def __init__(self, message: str, code: int = 403, reason: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_RAND_ALPHABET) for _ in range(n))


# ---------------------------------------------------------------- decode-time defaults


def image_tag(image: str) -> str:
    """parsers.ParseImageName's tag: "latest" when neither tag nor digest is given."""
    if "@" in image:
        name = image.split("@", 1)[0]
        digest = True
    else:
        name, digest = image, False
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _default_resources(res: Obj | None) -> None:
    if not res:
        return
    for key in ("limits", "requests"):
        if isinstance(res.get(key), dict):
            for name, q in res[key].items():
                try:
                    res[key][name] = canonical_quantity(q)
                except QuantityError:
                    pass  # validation (the core's) rejects it


def _default_probe(p: Obj | None) -> None:
    if not isinstance(p, dict):
        return
    for k, v in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not p.get(k):
            p[k] = v
    http = p.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def _default_env(c: Obj) -> None:
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"


def default_container(c: Obj) -> None:
    """SetDefaults_Container plus the nested defaults (ports, probes, env fieldRefs, resources)."""
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag(str(c.get("image", ""))) == "latest" else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    _default_resources(c["resources"])
    for port in c.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    _default_env(c)


def _default_volume(v: Obj) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(kind)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        ref = item.get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
    for src in (v.get("projected") or {}).get("sources") or []:
        sat = src.get("serviceAccountToken")
        if isinstance(sat, dict) and sat.get("expirationSeconds") is None:
            sat["expirationSeconds"] = 3600
        for item in (src.get("downwardAPI") or {}).get("items") or []:
            ref = item.get("fieldRef")
            if isinstance(ref, dict) and not ref.get("apiVersion"):
                ref["apiVersion"] = "v1"


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec (also applied to workload templates)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 keeps the deprecated serviceAccount in step with serviceAccountName (conversion).
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            _default_volume(v)


def default_pod(pod: Obj) -> None:
    """SetDefaults_Pod: requests from limits, enableServiceLinks, host-network ports (pods only)."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") or {}
            if isinstance(res.get("limits"), dict):
                req = res.setdefault("requests", {})
                for name, q in res["limits"].items():
                    req.setdefault(name, q)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    typed_pod(pod)
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for port in c.get("ports") or []:
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


def _template_spec(obj: Obj) -> None:
    tpl = obj.setdefault("spec", {}).setdefault("template", {})
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
    _template_spec(ds)


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
            _default_resources({"limits": status[key]})  # type: ignore[index]


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "pods": default_pod,
    "podtemplates": lambda o: default_pod_spec(o.setdefault("template", {}).setdefault("spec", {})),
    "deployments": _default_deployment,
    "replicasets": _default_replicaset,
    "daemonsets": _default_daemonset,
    "statefulsets": _default_statefulset,
    "services": _default_service,
    "endpoints": _default_endpoints,
    "namespaces": _default_namespace,
    "secrets": _default_secret,
    "nodes": _default_node,
}


def default_object(resource: str, obj: Obj) -> Obj:
    """Decode-time defaults for `resource` (plural name); a copy, the input is untouched."""
    out = copy.deepcopy(obj)
    fn = _DEFAULTERS.get(resource)
    if fn is not None:
        fn(out)
    return out


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
                    requests[name] = requests.get(name, Fraction(0)) + v
        seen = set()
        for name, q in (res.get("limits") or {}).items():
            if name in ("cpu", "memory"):
                v = parse_quantity(q)
                if v != 0:
                    seen.add(name)
                    limits[name] = limits.get(name, Fraction(0)) + v
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
    pod: Obj, sa_automount: bool | None = None, *, priority_classes: dict[str, int] | None = None
) -> Obj:
    """A pod as a real server stores it on create: defaults, ServiceAccount, Priority,
    DefaultTolerationSeconds, then status reset to Pending with its QoS class."""
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


def _node_create(node: Obj) -> Obj:
    """TaintNodesByCondition: a new node is not-ready (NoSchedule) until node lifecycle says otherwise."""
    out = default_object("nodes", node)
    taints = out["spec"].get("taints") or []
    if not any(
        t.get("key") == "node.kubernetes.io/not-ready" and t.get("effect") == "NoSchedule" for t in taints
    ):
        out["spec"]["taints"] = [*taints, {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    return out


_CREATE: dict[str, Callable[[Obj], Obj]] = {
    "nodes": _node_create,
    "namespaces": _namespace_create,
    "deployments": _reset_status("deployments", {}),
    "replicasets": _reset_status("replicasets", {"replicas": 0}),  # the one non-omitempty field
    "daemonsets": _reset_status(
        "daemonsets",
        {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0},
    ),
    "statefulsets": _reset_status("statefulsets", {"availableReplicas": 0, "replicas": 0}),
    "services": _reset_status("services", {"loadBalancer": {}}),
}


def admit_create(resource: str, obj: Obj, *, sa_automount: bool | None = None) -> Obj:
    """Everything a real server does to a new object of `resource` before storing it (a copy)."""
    if resource == "pods":
        return admit_pod_create(obj, sa_automount)
    fn = _CREATE.get(resource)
    if fn is not None:
        return fn(obj)
    return default_object(resource, obj)
