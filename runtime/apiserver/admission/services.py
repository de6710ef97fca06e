"""Service IP and node-port allocation, as the service registry does it on create and on type changes.

A real cluster gives every ClusterIP/NodePort/LoadBalancer Service a cluster IP from the service CIDR
(kubeadm's default 10.96.0.0/12; 10.96.0.1 is the `kubernetes` Service), fills clusterIPs, ipFamilies
and ipFamilyPolicy, and a node port in 30000-32767 for every NodePort/LoadBalancer port. Clients read
those fields back (kubectl shows CLUSTER-IP), so the embedded server allocates them the same way. The
caller passes the addresses and ports already in use (the store is its business); errors are the
422 field errors a real server returns.
"""

from __future__ import annotations

import copy
import ipaddress
import random
from typing import Any

from runtime.apiserver.admission.create import AdmissionError

Obj = dict[str, Any]

DEFAULT_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)


def _invalid(name: str, causes: list[str]) -> AdmissionError:
    """Allocation refusals are FieldValueInvalid errors, each `<field>: Invalid value: ...`."""
    text = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
    fields = [(c.split(": ", 1)[0], "FieldValueInvalid", c) for c in causes]
    return AdmissionError(f'Service "{name}" is invalid: {text}', code=422, reason="Invalid", causes=fields)


def _pick_ip(net: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str], rng: random.Random) -> str:
    size = net.num_addresses
    # Skip the network address and the first host (the `kubernetes` Service's well-known IP).
    first, last = 2, size - 2
    for _ in range(64):
        candidate = str(net.network_address + rng.randint(first, last))
        if candidate not in used:
            return candidate
    for offset in range(first, last + 1):
        candidate = str(net.network_address + offset)
        if candidate not in used:
            return candidate
    raise AdmissionError(
        "Internal error occurred: failed to allocate a serviceIP: range is full", 500, "InternalError"
    )


def allocate_service(
    svc: Obj,
    used_ips: set[str],
    used_node_ports: set[int],
    *,
    old: Obj | None = None,
    cidr: str = DEFAULT_CIDR,
    rng: random.Random | None = None,
) -> Obj:
    """`svc` with clusterIP(s), IP families and node ports filled in (a copy). `old` is the stored
    Service on update: its allocations are kept (cluster IPs are immutable)."""
    rnd = rng or random.Random()
    out = copy.deepcopy(svc)
    spec = out.setdefault("spec", {})
    name = str((out.get("metadata") or {}).get("name", ""))
    stype = spec.get("type") or "ClusterIP"
    net = ipaddress.ip_network(cidr)
    old_spec = (old or {}).get("spec") or {}
    if stype == "ExternalName":
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(k, None)
        return out
    if old_spec.get("clusterIP") and not spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
    requested = spec.get("clusterIP") or ""
    prefix = f'spec.clusterIPs: Invalid value: []string{{"{requested}"}}: failed to allocate IP {requested}: '
    if requested and requested != "None" and requested != old_spec.get("clusterIP"):
        try:
            ip = ipaddress.ip_address(requested)
        except ValueError:
            raise _invalid(
                name,
                [
                    f'spec.clusterIPs[0]: Invalid value: "{requested}": must be a valid IP address, '
                    "(e.g. 10.9.8.7 or 2001:db8::ffff)"
                ],
            ) from None
        if ip not in net:
            raise _invalid(
                name,
                [
                    prefix + f"the provided IP ({requested}) is not in the valid range. "
                    f"The range of valid IPs is {cidr}"
                ],
            )
        if requested in used_ips:
            raise _invalid(
                name,
                [prefix + "provided IP is already allocated"],
            )
    if not requested:
        requested = _pick_ip(net, used_ips, rnd)
        spec["clusterIP"] = requested
    spec["clusterIPs"] = [requested]
    family = "IPv6" if net.version == 6 else "IPv4"
    spec.setdefault("ipFamilies", [family])
    if not spec.get("ipFamilyPolicy"):
        headless_no_selector = requested == "None" and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_no_selector else "SingleStack"
    if stype in ("NodePort", "LoadBalancer"):
        _node_ports(name, spec, old_spec, used_node_ports, rnd)
    else:
        for p in spec.get("ports") or []:
            p.pop("nodePort", None)
    return out


def _node_ports(name: str, spec: Obj, old_spec: Obj, used: set[int], rnd: random.Random) -> None:
    lo, hi = NODE_PORT_RANGE
    old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_spec.get("ports") or []}
    taken = set(used)
    for i, p in enumerate(spec.get("ports") or []):
        want = p.get("nodePort") or old_ports.get((p.get("port"), p.get("protocol")))
        if want:
            if not lo <= int(want) <= hi:
                raise _invalid(
                    name,
                    [
                        f"spec.ports[{i}].nodePort: Invalid value: {want}: provided port is not in the "
                        f"valid range. The range of valid ports is {lo}-{hi}"
                    ],
                )
            if want in taken and want != old_ports.get((p.get("port"), p.get("protocol"))):
                raise _invalid(
                    name,
                    [f"spec.ports[{i}].nodePort: Invalid value: {want}: provided port is already allocated"],
                )
        else:
            free = [n for n in range(lo, hi + 1) if n not in taken]
            if not free:
                raise AdmissionError(
                    "Internal error occurred: failed to allocate a nodePort: range is full",
                    500,
                    "InternalError",
                )
            want = rnd.choice(free)
        p["nodePort"] = int(want)
        taken.add(int(want))
