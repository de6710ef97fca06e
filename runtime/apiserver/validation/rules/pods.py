"""Pod rules (pkg/apis/core/validation): the spec of a Pod and of every pod template, the few update
and status rules clients meet, and the quantities the decoder refuses before any rule runs."""

from __future__ import annotations

from typing import Any

from runtime.apiserver.validation.rules import meta
from runtime.apiserver.validation.rules.fielderrors import (
    FieldError,
    duplicate,
    invalid,
    not_found,
    not_supported,
    required,
    required_of,
)
from runtime.quantity import QuantityError, canonical_quantity, parse_quantity

Obj = dict[str, Any]

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
MAX_INT32 = 2147483647
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _dicts(v: Any) -> list[tuple[int, Obj]]:
    return [(i, x) for i, x in enumerate(v) if isinstance(x, dict)] if isinstance(v, list) else []


def quantity_error(spec: Any) -> str | None:
    """The decoder's refusal of an unparsable quantity in any container's resources (400), or None."""
    if not isinstance(spec, dict):
        return None
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for _, c in _dicts(spec.get(field)):
            res = c.get("resources")
            if not isinstance(res, dict):
                continue
            for part in ("limits", "requests"):
                m = res.get(part)
                if isinstance(m, dict):
                    for q in m.values():
                        try:
                            parse_quantity(q)
                        except (QuantityError, TypeError, AttributeError) as exc:
                            return str(exc)
    return None


def _ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, p in _dicts(ports):
        pp = f"{path}[{i}]"
        if p.get("name"):
            errs += [invalid(f"{pp}.name", p["name"], m) for m in meta.is_port_name(p["name"])]
        cp = p.get("containerPort")
        if not cp:
            errs.append(required(f"{pp}.containerPort"))
        elif not meta.is_port(cp):
            errs.append(invalid(f"{pp}.containerPort", cp, meta.PORT_RANGE))
        hp = p.get("hostPort")
        if hp and not meta.is_port(hp):
            errs.append(invalid(f"{pp}.hostPort", hp, meta.PORT_RANGE))
        errs += required_of(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
    return errs


def _resources(res: Any, path: str) -> list[FieldError]:
    """ValidateResourceRequirements: every request at most its limit (values compared exactly)."""
    errs: list[FieldError] = []
    if not isinstance(res, dict):
        return errs
    limits = meta.part(res, "limits")
    requests = meta.part(res, "requests")
    for name, q in requests.items():
        if name in limits and parse_quantity(q) > parse_quantity(limits[name]):
            errs.append(
                invalid(
                    f"{path}.requests",
                    canonical_quantity(q),
                    f"must be less than or equal to {name} limit of {canonical_quantity(limits[name])}",
                )
            )
    return errs


def _no_backsteps(value: Any, path: str) -> list[FieldError]:
    """validatePathNoBacksteps: no ".." element, or a mount escapes its volume (or hostPath its root)."""
    if isinstance(value, str) and ".." in value.split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def _local_descending_path(value: Any, path: str) -> list[FieldError]:
    """validateLocalDescendingPath: relative, without backsteps (a volume mount's subPath)."""
    if isinstance(value, str) and value.startswith("/"):
        return [invalid(path, value, "must be a relative path"), *_no_backsteps(value, path)]
    return _no_backsteps(value, path)


def _container(c: Obj, path: str, volumes: set[str]) -> list[FieldError]:
    """validateContainerCommon, in its order: name, image, ports, volume mounts, pull policy, resources."""
    errs: list[FieldError] = []
    name = c.get("name")
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in meta.is_dns1123_label(str(name))]
    if not c.get("image"):
        errs.append(required(f"{path}.image"))
    errs += _ports(c.get("ports"), f"{path}.ports")
    for i, m in _dicts(c.get("volumeMounts")):
        mp = f"{path}.volumeMounts[{i}]"
        if not m.get("name"):
            errs.append(required(f"{mp}.name"))
        elif m["name"] not in volumes:
            errs.append(not_found(f"{mp}.name", m["name"]))
        if not m.get("mountPath"):
            errs.append(required(f"{mp}.mountPath"))
        if m.get("subPath"):
            errs += _local_descending_path(m["subPath"], f"{mp}.subPath")
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    errs += _resources(c.get("resources"), f"{path}.resources")
    return errs


def pod_spec(spec: Any, path: str) -> list[FieldError]:
    """ValidatePodSpec (the parts the corpus and clients exercise), errors in its order."""
    if not isinstance(spec, dict):
        return [required(path)]
    errs: list[FieldError] = []
    volumes: set[str] = set()
    for i, v in _dicts(spec.get("volumes")):
        vname = v.get("name")
        if not vname:
            errs.append(required(f"{path}.volumes[{i}].name"))
        elif vname in volumes:
            errs.append(duplicate(f"{path}.volumes[{i}].name", vname))
        else:
            errs += [
                invalid(f"{path}.volumes[{i}].name", vname, m) for m in meta.is_dns1123_label(str(vname))
            ]
        volumes.add(str(vname))
        host = v.get("hostPath")
        if isinstance(host, dict):
            hp = f"{path}.volumes[{i}].hostPath.path"
            errs += [required(hp)] if not host.get("path") else _no_backsteps(host["path"], hp)
    containers = spec.get("containers")
    if not containers:
        errs.append(required(f"{path}.containers"))
    names: set[str] = set()
    for field in ("containers", "initContainers"):
        for i, c in _dicts(spec.get(field)):
            cp = f"{path}.{field}[{i}]"
            errs += _container(c, cp, volumes)
            if c.get("name") in names:
                errs.append(duplicate(f"{cp}.name", c.get("name")))
            names.add(str(c.get("name")))
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy")
    if dp is not None and dp not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", dp, DNS_POLICIES))
    errs += meta.label_map(spec.get("nodeSelector"), f"{path}.nodeSelector")
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not 1 <= ads <= MAX_INT32:
        errs.append(
            invalid(f"{path}.activeDeadlineSeconds", ads, f"must be between 1 and {MAX_INT32}, inclusive")
        )
    return errs


def pod_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: template labels and annotations, then its pod spec."""
    if not isinstance(template, dict):
        return [required(path)]
    return meta.object_meta(template, f"{path}.metadata") + pod_spec(template.get("spec"), f"{path}.spec")


def pod(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return pod_status(new.get("status"))
    errs = meta.object_meta(new) + pod_spec(new.get("spec"), "spec")
    if old is not None:
        ads = (new.get("spec") or {}).get("activeDeadlineSeconds")
        if isinstance(ads, int) and not 0 <= ads <= MAX_INT32:
            errs.append(
                invalid("spec.activeDeadlineSeconds", ads, f"must be between 0 and {MAX_INT32}, inclusive")
            )
    return errs


def pod_status(status: Any) -> list[FieldError]:
    """ValidatePodStatusUpdate's IP checks: podIPs (defaulted from podIP) must be IP addresses."""
    if not isinstance(status, dict):
        return []
    ips = [p.get("ip") for _, p in _dicts(status.get("podIPs"))]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return [
        invalid(f"status.podIPs[{i}]", ip, IP_MSG) for i, ip in enumerate(ips) if ip and not meta.is_ip(ip)
    ]
