"""Decode the Kubernetes protobuf request bodies kubectl's typed clients send.

`kubectl create configmap|secret|namespace|serviceaccount|token|deployment|job|service|rolebinding`,
`kubectl auth can-i|whoami` post `application/vnd.kubernetes.protobuf` and never fall back to JSON.
Responses stay JSON (the client accepts both). Only the messages those commands send are described
here, field numbers as in k8s.io/api's generated.proto; proto2 writes zero values of non-pointer fields,
which JSON omits (omitempty), so zeros are dropped except for the pointer fields listed in KEEP_ZERO.
The encoding primitives at the end serve the one protobuf document the server writes, /openapi/v2.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

MAGIC = b"k8s\x00"
Spec = dict[
    int, tuple[str, str]
]  # field -> (json name, type); type: s b i bool map mapb rep:<t> msg:<M> time skip

M: dict[str, Spec] = {
    "Unknown": {
        1: ("typeMeta", "msg:TypeMeta"),
        2: ("raw", "b"),
        3: ("contentEncoding", "s"),
        4: ("contentType", "s"),
    },
    "TypeMeta": {1: ("apiVersion", "s"), 2: ("kind", "s")},
    "ObjectMeta": {
        1: ("name", "s"),
        2: ("generateName", "s"),
        3: ("namespace", "s"),
        4: ("selfLink", "s"),
        5: ("uid", "s"),
        6: ("resourceVersion", "s"),
        7: ("generation", "i"),
        8: ("creationTimestamp", "skip"),
        9: ("deletionTimestamp", "skip"),
        10: ("deletionGracePeriodSeconds", "i"),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        13: ("ownerReferences", "rep:msg:OwnerReference"),
        14: ("finalizers", "rep:s"),
        17: ("managedFields", "skip"),
    },
    "OwnerReference": {
        1: ("kind", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "mapb"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "mapb"),
        3: ("type", "s"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec"), 3: ("status", "skip")},
    "NamespaceSpec": {1: ("finalizers", "rep:s")},
    "ServiceAccount": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("secrets", "rep:msg:ObjectReference"),
        3: ("imagePullSecrets", "rep:msg:LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "ObjectReference": {
        1: ("kind", "s"),
        2: ("namespace", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("resourceVersion", "s"),
        7: ("fieldPath", "s"),
    },
    "LocalObjectReference": {1: ("name", "s")},
    "TokenRequest": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("spec", "msg:TokenRequestSpec"),
        3: ("status", "skip"),
    },
    "TokenRequestSpec": {
        1: ("audiences", "rep:s"),
        3: ("boundObjectRef", "msg:BoundObjectReference"),
        4: ("expirationSeconds", "i"),
    },
    "BoundObjectReference": {1: ("kind", "s"), 2: ("apiVersion", "s"), 3: ("name", "s"), 4: ("uid", "s")},
    "SelfSubjectAccessReview": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("spec", "msg:SSARSpec"),
        3: ("status", "skip"),
    },
    "SSARSpec": {
        1: ("resourceAttributes", "msg:ResourceAttributes"),
        2: ("nonResourceAttributes", "msg:NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "s"),
        2: ("verb", "s"),
        3: ("group", "s"),
        4: ("version", "s"),
        5: ("resource", "s"),
        6: ("subresource", "s"),
        7: ("name", "s"),
    },
    "NonResourceAttributes": {1: ("path", "s"), 2: ("verb", "s")},
    "SelfSubjectReview": {1: ("metadata", "msg:ObjectMeta"), 2: ("status", "skip")},
    "RoleBinding": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("subjects", "rep:msg:Subject"),
        3: ("roleRef", "msg:RoleRef"),
    },
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "Role": {1: ("metadata", "msg:ObjectMeta"), 2: ("rules", "rep:msg:PolicyRule")},
    "ClusterRole": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("rules", "rep:msg:PolicyRule"),
        3: ("aggregationRule", "skip"),
    },
    "PolicyRule": {
        1: ("verbs", "rep:s"),
        2: ("apiGroups", "rep:s"),
        3: ("resources", "rep:s"),
        4: ("resourceNames", "rep:s"),
        5: ("nonResourceURLs", "rep:s"),
    },
    "Deployment": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("spec", "msg:DeploymentSpec"),
        3: ("status", "skip"),
    },
    "DeploymentSpec": {
        1: ("replicas", "i"),
        2: ("selector", "msg:LabelSelector"),
        3: ("template", "msg:PodTemplateSpec"),
        4: ("strategy", "skip"),
        5: ("minReadySeconds", "i"),
        6: ("revisionHistoryLimit", "i"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "i"),
    },
    "Job": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:JobSpec"), 3: ("status", "skip")},
    "JobSpec": {
        1: ("parallelism", "i"),
        2: ("completions", "i"),
        3: ("activeDeadlineSeconds", "i"),
        4: ("selector", "msg:LabelSelector"),
        5: ("manualSelector", "bool"),
        6: ("template", "msg:PodTemplateSpec"),
        7: ("backoffLimit", "i"),
    },
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "rep:msg:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "rep:s")},
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {
        2: ("containers", "rep:msg:Container"),
        3: ("restartPolicy", "s"),
        4: ("terminationGracePeriodSeconds", "i"),
        5: ("activeDeadlineSeconds", "i"),
        6: ("dnsPolicy", "s"),
        7: ("nodeSelector", "map"),
        8: ("serviceAccountName", "s"),
        9: ("serviceAccount", "s"),
        10: ("nodeName", "s"),
        11: ("hostNetwork", "bool"),
        12: ("hostPID", "bool"),
        13: ("hostIPC", "bool"),
        19: ("schedulerName", "s"),
        20: ("initContainers", "rep:msg:Container"),
        21: ("automountServiceAccountToken", "bool"),
    },
    "Container": {
        1: ("name", "s"),
        2: ("image", "s"),
        3: ("command", "rep:s"),
        4: ("args", "rep:s"),
        5: ("workingDir", "s"),
        6: ("ports", "rep:msg:ContainerPort"),
        7: ("env", "rep:msg:EnvVar"),
        8: ("resources", "skip"),
        14: ("imagePullPolicy", "s"),
        16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"),
        18: ("tty", "bool"),
    },
    "ContainerPort": {
        1: ("name", "s"),
        2: ("hostPort", "i"),
        3: ("containerPort", "i"),
        4: ("protocol", "s"),
        5: ("hostIP", "s"),
    },
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec"), 3: ("status", "skip")},
    "ServiceSpec": {
        1: ("ports", "rep:msg:ServicePort"),
        2: ("selector", "map"),
        3: ("clusterIP", "s"),
        4: ("type", "s"),
        5: ("externalIPs", "rep:s"),
        11: ("externalName", "s"),
    },
    "ServicePort": {
        1: ("name", "s"),
        2: ("protocol", "s"),
        3: ("port", "i"),
        4: ("targetPort", "msg:IntOrString"),
        5: ("nodePort", "i"),
    },
    "IntOrString": {1: ("type", "i"), 2: ("intVal", "i"), 3: ("strVal", "s")},
}
M["ClusterRoleBinding"] = M["RoleBinding"]
KEEP_ZERO = {
    ("DeploymentSpec", 1),
    ("JobSpec", 1),
    ("JobSpec", 2),
    ("JobSpec", 7),
    ("ServiceAccount", 4),
    ("PodSpec", 21),
    ("ConfigMap", 4),
    ("Secret", 5),
    ("TokenRequestSpec", 4),
}


class ProtobufError(ValueError):
    pass


def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(b):
            raise ProtobufError("truncated varint")
        x = b[i]
        i += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, i


def _fields(b: bytes) -> list[tuple[int, int, Any]]:
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        v: Any
        if wt == 0:
            v, i = _varint(b, i)
        elif wt in (1, 2, 5):
            n, i = _varint(b, i) if wt == 2 else ({1: 8, 5: 4}[wt], i)
            v, i = b[i : i + n], i + n
            if i > len(b):
                raise ProtobufError(f"field {num}: {n} bytes announced, {len(v)} left")
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _int(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _map(v: bytes, binary: bool) -> tuple[str, Any]:
    k, val = "", b""
    for num, wt, x in _fields(v):
        if num in (1, 2) and wt != 2:
            raise ProtobufError(f"map entry field {num}: wire type {wt}, expected 2 (bytes)")
        if num == 1:
            k = x.decode()
        elif num == 2:
            val = x
    return k, base64.b64encode(val).decode() if binary else val.decode()


def decode_message(b: bytes, name: str) -> dict[str, Any]:
    spec = M[name]
    out: dict[str, Any] = {}
    for num, wt, v in _fields(b):
        if num not in spec:
            if v in (0, b""):
                continue
            raise ProtobufError(f"{name} field {num} is not understood by this server")
        key, typ = spec[num]
        keep = (name, num) in KEEP_ZERO
        rep = typ.startswith("rep:")
        base = typ[4:] if rep else typ
        if base == "skip":
            continue
        if wt != (0 if base in ("i", "bool") else 2):  # a varint where bytes belong, or the reverse
            raise ProtobufError(f"{name} field {num} ({key}): wire type {wt} does not fit {base}")
        if base == "map" or base == "mapb":
            k, mv = _map(v, base == "mapb")
            out.setdefault(key, {})[k] = mv
            continue
        if base == "s":
            val: Any = v.decode()
        elif base == "b":
            val = v
        elif base == "i":
            val = _int(v)
        elif base == "bool":
            val = bool(v)
        elif base.startswith("msg:"):
            val = decode_message(v, base[4:])
        else:  # pragma: no cover
            raise ProtobufError(f"bad schema type {typ}")
        if rep:
            out.setdefault(key, []).append(val)
        elif val or keep:
            out[key] = val
    if name == "IntOrString":
        return out.get("strVal") if out.get("type") == 1 else out.get("intVal", 0)  # type: ignore[return-value]
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object (`k8s\\0` + runtime.Unknown) as the JSON dict it stands for."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = decode_message(body[4:], "Unknown")
    tm = unknown.get("typeMeta") or {}
    kind = tm.get("kind", "")
    if kind not in M or kind in ("Unknown", "TypeMeta"):
        raise ProtobufError(f"protobuf bodies of kind {kind!r} are not supported; send JSON")
    obj = decode_message(unknown.get("raw", b""), kind)
    return {"apiVersion": tm.get("apiVersion", ""), "kind": kind, **obj}


# Encoding: the few wire primitives the OpenAPI v2 protobuf document (openapi/gnostic.py) is built from.


def uvarint(n: int) -> bytes:
    """An unsigned varint; negative int64 values go out as their 64-bit two's complement, as protobuf does."""
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def enc_bytes(num: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message); empty payloads are still written."""
    return uvarint(num << 3 | 2) + uvarint(len(payload)) + payload


def enc_str(num: int, s: str) -> bytes:
    """A proto3 string field: empty strings are the default and are not written."""
    return enc_bytes(num, s.encode()) if s else b""


def enc_varint(num: int, n: int) -> bytes:
    return uvarint(num << 3) + uvarint(n) if n else b""


def enc_double(num: int, x: float) -> bytes:
    return uvarint(num << 3 | 1) + struct.pack("<d", x) if x else b""
