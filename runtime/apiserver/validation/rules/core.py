"""Rules of the other kinds the embedded server stores: ConfigMap and Secret (keys, immutable), Service
(ports, protocols, clusterIPs, status), Lease, Node taints, EndpointSlice, RBAC roles and bindings."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from runtime.apiserver.validation.rules import meta
from runtime.apiserver.validation.rules.fielderrors import (
    FieldError,
    GoText,
    duplicate,
    forbidden,
    go_value,
    invalid,
    not_supported,
    required,
    required_of,
    too_long,
)
from runtime.apiserver.validation.rules.gocmpdiff import cmp_diff

Obj = dict[str, Any]

IMMUTABLE = "field is immutable when `immutable` is set"
CONFIG_MAX = 1024 * 1024
SERVICE_PROTOCOLS = ["SCTP", "TCP", "UDP"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
SUBJECT_KINDS = ["ServiceAccount", "User", "Group"]
_B64 = re.compile(r"[^A-Za-z0-9+/=]")


def _dicts(v: Any) -> list[tuple[int, Obj]]:
    return [(i, x) for i, x in enumerate(v) if isinstance(x, dict)] if isinstance(v, list) else []


def base64_error(obj: Obj) -> str | None:
    """Go's base64 decoding of Secret data ([]byte fields): `illegal base64 data at input byte N`."""
    data = obj.get("data")
    if not isinstance(data, dict):
        return None
    for v in data.values():
        if not isinstance(v, str):
            continue
        m = _B64.search(v)
        if m:
            return f"illegal base64 data at input byte {m.start()}"
        try:
            base64.b64decode(v, validate=True)
        except binascii.Error:
            return f"illegal base64 data at input byte {len(v) - len(v) % 4 if len(v) % 4 else len(v)}"
    return None


def _size(value: Any, encoded: bool) -> int:
    """Bytes a value stores: UTF-8 text, or what base64 text decodes to ([]byte fields)."""
    if not isinstance(value, str):
        return 0
    if encoded:
        return len(value) * 3 // 4 - value.count("=", -2)
    return len(value.encode())


def _keyed(obj: Obj, bags: tuple[str, ...], size_field: str) -> list[FieldError]:
    """Keys are config keys, no key in both data and binaryData, 1 MiB of values at most (decoded)."""
    errs: list[FieldError] = []
    size = 0
    encoded = {"binaryData"} if size_field == "" else {"data"}  # a Secret's data is []byte
    for bag in bags:
        m = obj.get(bag)
        if not isinstance(m, dict):
            continue
        for key, value in m.items():
            errs += [invalid(f"{bag}[{key}]", key, msg) for msg in meta.is_config_key(key)]
            if bag == "data" and isinstance(obj.get("binaryData"), dict) and key in obj["binaryData"]:
                errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
            size += _size(value, bag in encoded)
    if size > CONFIG_MAX:
        errs.append(too_long(size_field, "", CONFIG_MAX))
    return errs


def _immutable(new: Obj, old: Obj | None, bags: tuple[str, ...]) -> list[FieldError]:
    if old is None or old.get("immutable") is not True:
        return []
    errs: list[FieldError] = []
    if new.get("immutable") is not True:
        errs.append(forbidden("immutable", IMMUTABLE))
    errs += [forbidden(bag, IMMUTABLE) for bag in bags if (new.get(bag) or None) != (old.get(bag) or None)]
    return errs


def configmap(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    return (
        _immutable(new, old, ("data", "binaryData"))
        + meta.object_meta(new)
        + _keyed(new, ("data", "binaryData"), "")
    )


def secret(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    errs = _immutable(new, old, ("data",)) + meta.object_meta(new) + _keyed(new, ("data",), "data")
    data = meta.part(new, "data")
    stype = new.get("type")
    if stype == "kubernetes.io/tls":
        errs += [required(f"data[{k}]") for k in ("tls.crt", "tls.key") if k not in data]
    elif stype == "kubernetes.io/basic-auth" and not data.get("username") and not data.get("password"):
        errs.append(required("data[username]"))
    if old is not None and old.get("type") != stype:
        errs.append(invalid("type", stype, "field is immutable"))
    return errs


def _service_port_text(port: Obj) -> GoText:
    proto, number = go_value(port.get("protocol") or ""), port.get("port") or 0
    return GoText(
        f'core.ServicePort{{Name:"", Protocol:{proto}, AppProtocol:(*string)(nil), Port:{number}, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def service(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return _lb_status(new.get("status"))
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports")
    if not ports and not headless and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    for i, p in _dicts(ports):
        pp = f"spec.ports[{i}]"
        name = p.get("name") or ""
        if isinstance(ports, list) and len(ports) > 1 and not name:
            errs.append(required(f"{pp}.name"))
        elif name:
            errs += [invalid(f"{pp}.name", name, m) for m in meta.is_dns1123_label(name)]
            if name in names:
                errs.append(duplicate(f"{pp}.name", name))
            names.add(name)
        if not meta.is_port(p.get("port")):
            errs.append(invalid(f"{pp}.port", p.get("port"), meta.PORT_RANGE))
        errs += required_of(f"{pp}.protocol", p.get("protocol"), SERVICE_PROTOCOLS)
        if "targetPort" in p:
            errs += meta.port_num_or_name(p["targetPort"], f"{pp}.targetPort")
    seen: set[tuple[Any, Any]] = set()
    for i, p in _dicts(ports):
        key = (p.get("protocol"), p.get("port"))
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}]", _service_port_text(p)))
        seen.add(key)
    if old is not None:
        errs += _cluster_ips_update(spec, old.get("spec") or {})
    return errs


def _cluster_ips_update(spec: Obj, old_spec: Obj) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs: the allocated addresses may not change (unless to or from
    ExternalName)."""
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    new_ips = spec.get("clusterIPs") or []
    for i, ip in enumerate(old_spec.get("clusterIPs") or []):
        if i < len(new_ips) and new_ips[i] != ip:
            shown = GoText("[]string{" + ", ".join(go_value(x) for x in new_ips) + "}")
            return [invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set")]
    return []


def _lb_status(status: Any) -> list[FieldError]:
    lb = status.get("loadBalancer") if isinstance(status, dict) else None
    if not isinstance(lb, dict):
        return []
    errs: list[FieldError] = []
    for i, ing in _dicts(lb.get("ingress")):
        ip = ing.get("ip")
        if ip and not meta.is_ip(ip):
            errs.append(invalid(f"status.loadBalancer.ingress[{i}].ip", ip, "must be a valid IP address"))
    return errs


def lease(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    d = spec.get("leaseDurationSeconds")
    if isinstance(d, int) and d <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
    errs += meta.nonnegative(spec.get("leaseTransitions"), "spec.leaseTransitions")
    return errs


def node(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    for i, t in _dicts(spec.get("taints")):
        path = f"metadata.taints[{i}]"  # sic: Kubernetes reports taints under metadata
        errs += [
            invalid(f"{path}.key", t.get("key", ""), m) for m in meta.is_qualified_name(str(t.get("key", "")))
        ]
        if t.get("value"):
            errs += [invalid(f"{path}.value", t["value"], m) for m in meta.is_label_value(str(t["value"]))]
        errs += required_of(f"{path}.effect", t.get("effect"), TAINT_EFFECTS)
    return errs


def endpointslice(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    errs = meta.object_meta(new)
    errs += required_of("addressType", new.get("addressType"), ADDRESS_TYPES)
    return errs


def role(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    errs = meta.object_meta(new)
    for i, r in _dicts(new.get("rules")):
        if not r.get("verbs"):
            errs.append(required(f"rules[{i}].verbs", "verbs must contain at least one value"))
        if (
            r.get("nonResourceURLs")
            and (r.get("resources") or r.get("apiGroups"))
            and new.get("kind") == "Role"
        ):
            errs.append(
                invalid(
                    f"rules[{i}].nonResourceURLs",
                    r["nonResourceURLs"],
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        elif not r.get("nonResourceURLs") and not r.get("apiGroups") and r.get("resources"):
            errs.append(
                required(f"rules[{i}].apiGroups", "resource rules must supply at least one api group")
            )
    return errs


def rolebinding(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    errs = meta.object_meta(new)
    ref = meta.part(new, "roleRef")
    allowed = ["Role", "ClusterRole"] if new.get("kind") == "RoleBinding" else ["ClusterRole"]
    if ref.get("kind") not in allowed:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), allowed))
    if not ref.get("name"):
        errs.append(required("roleRef.name"))
    for i, s in _dicts(new.get("subjects")):
        path = f"subjects[{i}]"
        if not s.get("name"):
            errs.append(required(f"{path}.name"))
        if s.get("kind") not in SUBJECT_KINDS:
            errs.append(not_supported(f"{path}.kind", s.get("kind", ""), SUBJECT_KINDS))
    if old is not None and isinstance(old.get("roleRef"), dict) and old["roleRef"] != ref:
        group, kind, name = (go_value(ref.get(k, "")) for k in ("apiGroup", "kind", "name"))
        shown = GoText(f"rbac.RoleRef{{APIGroup:{group}, Kind:{kind}, Name:{name}}}")
        errs.append(invalid("roleRef", shown, "cannot change roleRef"))
    return errs


def event(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """ValidateEventCreate for events.k8s.io/v1 writes: the legacy checks of an event with eventTime,
    then the strict ones (core/v1 Events keep only the legacy checks, which kedge does not repeat)."""
    if old is not None:
        return []
    errs: list[FieldError] = []
    ns = (new.get("metadata") or {}).get("namespace") or ""
    regarding = meta.part(new, "regarding")
    if new.get("eventTime"):
        if not regarding.get("namespace") and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", "", "does not match event.namespace"))
        controller = str(new.get("reportingController") or "")
        if not controller:
            errs.append(required("reportingController"))
        errs += [invalid("reportingController", controller, m) for m in meta.is_qualified_name(controller)]
        instance = str(new.get("reportingInstance") or "")
        if not instance:
            errs.append(required("reportingInstance"))
        elif len(instance) > 128:
            errs.append(invalid("reportingInstance", "", "can have at most 128 characters"))
    errs += meta.object_meta(new)
    if not new.get("eventTime"):
        errs.append(required("eventTime"))
    if new.get("type") not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {new.get('type') or ''}"))
    return errs


ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


def pvc(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec: access modes and a storage request."""
    if sub == "status":
        return []
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    modes = spec.get("accessModes")
    if not modes:
        errs.append(required("spec.accessModes", "at least 1 access mode is required"))
    for mode in modes if isinstance(modes, list) else []:
        if mode not in ACCESS_MODES:
            errs.append(not_supported("spec.accessModes", mode, ACCESS_MODES))
    if "storage" not in meta.part(meta.part(spec, "resources"), "requests"):
        errs.append(required("spec.resources[storage]"))
    if old is not None:
        errs += _pvc_update(spec, meta.part(old, "spec"), meta.part(old, "status").get("phase"))
    return errs


def _pvc_update(spec: Obj, old_spec: Obj, phase: Any) -> list[FieldError]:
    """ValidatePersistentVolumeClaimUpdate: the spec is immutable; a bound claim may change its storage
    requests. The message goes on with go-cmp's diff of the old spec and the new one (its requests put
    back to the old ones for a bound claim), as the real server prints it."""
    if phase == "Bound":
        requests = meta.part(old_spec, "resources").get("requests")
        spec = {**spec, "resources": {**meta.part(spec, "resources"), "requests": requests}}
    if spec == old_spec:
        return []
    why = "spec is immutable after creation except resources.requests for bound claims"
    return [forbidden("spec", why + "\n" + cmp_diff(old_spec, spec, "core.PersistentVolumeClaimSpec"))]
