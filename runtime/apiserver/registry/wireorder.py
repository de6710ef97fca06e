"""Objects in the field order kube-apiserver writes them, so answers match its bytes.

Go's JSON encoder writes a struct's fields in declaration order and a map's keys sorted. Built-in
kinds are structs: TypeMeta (kind, apiVersion), ObjectMeta in its declaration order, then the kind's
fields with `status` last (every built-in kind declares it last). Custom resources are unstructured
maps: every key, at every depth, sorted. Applied once, when an object is stored (storage.Entry.of);
what is stored is what every read and watch answers.
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.patch.patchmeta import BUILTIN_GROUPS

Obj = dict[str, Any]

# k8s.io/apimachinery/pkg/apis/meta/v1.ObjectMeta, in declaration order
OBJECT_META = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
_META_RANK = {k: i for i, k in enumerate(OBJECT_META)}


def struct_order(obj: Obj) -> Obj:
    """A built-in kind's object in its Go struct order (a new dict when it differs; nested values shared)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        ranked = sorted(meta, key=lambda k: _META_RANK.get(k, len(OBJECT_META)))
        if ranked != list(meta):
            meta = {k: meta[k] for k in ranked}
    out: Obj = {}
    for k in ("kind", "apiVersion"):
        if k in obj:
            out[k] = obj[k]
    if "metadata" in obj:
        out["metadata"] = meta
    for k, v in obj.items():
        if k not in out and k != "status":
            out[k] = v
    if "status" in obj:
        out["status"] = obj["status"]
    return out


def encode(obj: Obj, storage_key: str) -> bytes:
    """The stored bytes of `obj` under `storage_key` ("group/plural"): struct order for a built-in
    kind, sorted keys for a custom resource (its group is not a built-in one)."""
    if storage_key.split("/", 1)[0] in BUILTIN_GROUPS:
        return orjson.dumps(struct_order(obj))
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
