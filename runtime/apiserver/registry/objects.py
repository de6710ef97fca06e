"""Metadata rules every write follows: names, uid, timestamps, generation, what a write may change.

Pure functions over dicts; handlers call them in the same order the generic registry does
(BeforeCreate/BeforeUpdate), so their effects show up exactly where Kubernetes shows them.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import orjson

from runtime.apiserver.http.status_errors import StatusError, invalid
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.validation.names import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    max_len,
)

Obj = dict[str, Any]

_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


_NOW: list[Any] = [-1, ""]  # (whole second, its RFC 3339 text): formatted once a second, not per write


def now() -> str:
    t = int(time.time())
    if t != _NOW[0]:
        _NOW[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        _NOW[0] = t
    text: str = _NOW[1]
    return text


def new_uid() -> str:
    """str(uuid.uuid4()) without the UUID object: 16 random bytes with the version 4 / RFC 4122 bits."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_time(s: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")))


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_GEN_ALPHABET) for _ in range(5))


def name_errors(rt: ResourceType, name: str) -> list[tuple[str, str, str]]:
    """metadata.name as each kind's ValidateNameFunc checks it: DNS-1123 labels (namespaces, with a
    word of their own for dots), DNS-1035 labels (services), subdomains (the rest; CronJobs at most
    52 characters, leaving room for the Job names made from them)."""
    if rt.kind == "Event" and not rt.crd:
        return []
    if rt.kind == "Namespace" and not rt.group and "." in name:
        msgs = ["must not contain dots"]
    elif rt.kind == "Service" and not rt.group:
        msgs = dns1035_label_errors(name)
    elif rt.name_is_label:
        msgs = dns1123_label_errors(name)
    else:
        msgs = dns1123_subdomain_errors(name)
        if rt.kind == "CronJob" and rt.group == "batch" and len(name) > 52:
            msgs = [max_len(52), *msgs]
    shown = orjson.dumps(name).decode()
    return [
        ("metadata.name", "FieldValueInvalid", f"metadata.name: Invalid value: {shown}: {m}") for m in msgs
    ]


def metadata_errors(obj: Obj) -> list[tuple[str, str, str]]:
    """Type checks the decoder would make (labels/annotations must be string maps)."""
    meta = obj.get("metadata")
    causes: list[tuple[str, str, str]] = []
    if not isinstance(meta, dict):
        return causes
    for field in ("labels", "annotations"):
        m = meta.get(field)
        if m is None:
            continue
        if not isinstance(m, dict) or any(not isinstance(v, str) for v in m.values()):
            causes.append(
                (
                    f"metadata.{field}",
                    "FieldValueInvalid",
                    f"metadata.{field}: Invalid value: must be a map of strings",
                )
            )
    return causes


def prepare_create(rt: ResourceType, obj: Obj, namespace: str) -> Obj:
    """Fill server-owned metadata on create (the name is settled by the caller)."""
    meta = obj.setdefault("metadata", {})
    if rt.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now()
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(k, None)
    if rt.generation or rt.crd:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if rt.reset_status_on_create or (rt.crd and rt.has_status):
        obj.pop("status", None)
        if not rt.crd:
            obj["status"] = {}
    if rt.kind == "Namespace" and not rt.group:  # spec.finalizers: admission, after managedFields
        obj["status"] = {"phase": "Active"}
    return obj


_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def prepare_update(rt: ResourceType, old: Obj, new: Obj, subresource: str) -> Obj:
    """Carry server-owned fields over and keep spec/status apart when status is a subresource."""
    om, nm = old.get("metadata", {}), new.setdefault("metadata", {})
    for k in _SERVER_META:
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)
    if rt.namespaced:
        nm["namespace"] = om.get("namespace", "")
    if subresource == "status":
        out = {k: v for k, v in old.items() if k != "status"}
        if "status" in new:
            out["status"] = new["status"]
        # metadata: labels, annotations, ownerReferences and finalizers may not change through status
        out["metadata"] = {**om, "resourceVersion": nm.get("resourceVersion", om.get("resourceVersion"))}
        return out
    if rt.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if (rt.generation or rt.crd) and _spec_changed(old, new):
        nm["generation"] = int(om.get("generation", 1)) + 1
    if rt.kind == "DaemonSet" and rt.group == "apps":
        _template_generation(old, new)
    return new


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _template_generation(old: Obj, new: Obj) -> None:
    """A DaemonSet's internal spec.templateGeneration, which apps/v1 carries as an annotation: an update
    cannot set it; it goes up by one when the pod template changes (the strategy's PrepareForUpdate)."""
    annotations = (old.get("metadata") or {}).get("annotations") or {}
    try:
        generation = int(annotations.get(TEMPLATE_GENERATION, "1"))
    except ValueError:
        generation = 1
    if (old.get("spec") or {}).get("template") != (new.get("spec") or {}).get("template"):
        generation += 1
    meta = new["metadata"]
    meta["annotations"] = {**(meta.get("annotations") or {}), TEMPLATE_GENERATION: str(generation)}


def _spec_changed(old: Obj, new: Obj) -> bool:
    skip = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}


def same_object(old: Obj, new: Obj) -> bool:
    """A no-op write: Kubernetes then keeps the resourceVersion (managedFields times excepted)."""

    def strip(o: Obj) -> Obj:
        meta = {
            k: v for k, v in o.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")
        }
        mf = [
            {k: v for k, v in f.items() if k != "time"}
            for f in o.get("metadata", {}).get("managedFields", [])
        ]
        return {**o, "metadata": meta, "_mf": mf}

    return strip(old) == strip(new)


def check_finalizer_additions(rt: ResourceType, old: Obj, new: Obj) -> None:
    om, nm = old.get("metadata", {}), new.get("metadata", {})
    if om.get("deletionTimestamp"):
        added = set(nm.get("finalizers") or []) - set(om.get("finalizers") or [])
        if added:
            name = nm.get("name", "")
            quoted = ", ".join(f'"{a}"' for a in sorted(added))
            raise invalid(
                rt.kind,
                name,
                rt.group,
                [
                    (
                        "metadata.finalizers",
                        "FieldValueForbidden",
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
                        "being "
                        f"deleted, found new finalizers []string{{{quoted}}}",
                    )
                ],
            )


def require(cond: bool, err: StatusError) -> None:
    if not cond:
        raise err
