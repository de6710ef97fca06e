"""A container's environment: envFrom, then env (value / valueFrom), with $(VAR) expansion like kubelet."""

from __future__ import annotations

import re
from typing import Any

from runtime.edge.pods.refs import RefMissing, RefResolver, field_value, resource_value, source_data

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(s: str, env: dict[str, str]) -> str:
    """$(VAR) -> value when VAR is defined (else left as is); $$ -> $."""
    return _REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)


def needs_pod_ip(container: dict[str, Any]) -> bool:
    """Whether the env names the pod IP (known only once the sandbox runs)."""
    paths = (
        (i.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") for i in container.get("env") or []
    )
    return any(p in ("status.podIP", "status.podIPs") for p in paths)


async def resolve(
    refs: RefResolver, pod: dict[str, Any], container: dict[str, Any], host_ip: str, pod_ip: str
) -> dict[str, str]:
    """Ordered env for `container`; raises RefMissing (→ CreateContainerConfigError)."""
    ns = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            if key in src:
                ref = src[key]
                data = await source_data(refs, ns, kind, ref["name"], bool(ref.get("optional")))
                env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        vf = item["valueFrom"]
        value: str | None
        if "fieldRef" in vf:
            value = field_value(pod, vf["fieldRef"]["fieldPath"], host_ip, pod_ip)
        elif "resourceFieldRef" in vf:
            r = vf["resourceFieldRef"]
            value = resource_value(
                pod, r.get("containerName") or container["name"], r["resource"], r.get("divisor")
            )
        else:
            kind, ref = (
                ("configmap", vf.get("configMapKeyRef"))
                if "configMapKeyRef" in vf
                else ("secret", vf.get("secretKeyRef"))
            )
            if not ref:
                raise RefMissing(f"env {name}: unsupported valueFrom {sorted(vf)}")
            data = await source_data(refs, ns, kind, ref["name"], bool(ref.get("optional")))
            if ref["key"] in data:
                value = data[ref["key"]].decode(errors="replace")
            elif ref.get("optional"):
                value = None
            else:
                raise RefMissing(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
        if value is not None:
            env[name] = value
    return env
