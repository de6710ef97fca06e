"""Go's `%#v` of an internal core.PodTemplateSpec, as a Job's "field is immutable" error prints its new
template: every field of the internal structs in their declaration order (kube 1.28), nil slices,
maps and pointers as `[]T(nil)`, `map[K]V(nil)`, `(*T)(nil)`, other pointers as an address (the
corpus normalises those to <ptr>), maps with sorted keys, a zero time as time.Date(1, …).

Exact for the types listed below. The internal PodSpec keeps hostNetwork/hostPID/hostIPC in its
SecurityContext, which v1 conversion always allocates, so it prints as a pointer. Quantities print
their parsed int64Amount form; the cached-string rules of resource.Quantity are not reproduced, so a
template with resource limits may differ from the real text in the `s:` of its quantities.
"""

from __future__ import annotations

import datetime
from fractions import Fraction
from typing import Any

import orjson

from runtime.quantity import QuantityError, parse_quantity

Fields = list[tuple[str, str]]  # (Go field name, Go type)

_CONTAINER: Fields = [
    ("Name", "string"),
    ("Image", "string"),
    ("Command", "[]string"),
    ("Args", "[]string"),
    ("WorkingDir", "string"),
    ("Ports", "[]core.ContainerPort"),
    ("EnvFrom", "[]core.EnvFromSource"),
    ("Env", "[]core.EnvVar"),
    ("Resources", "core.ResourceRequirements"),
    ("ResizePolicy", "[]core.ContainerResizePolicy"),
    ("RestartPolicy", "*core.ContainerRestartPolicy"),
    ("VolumeMounts", "[]core.VolumeMount"),
    ("VolumeDevices", "[]core.VolumeDevice"),
    ("LivenessProbe", "*core.Probe"),
    ("ReadinessProbe", "*core.Probe"),
    ("StartupProbe", "*core.Probe"),
    ("Lifecycle", "*core.Lifecycle"),
    ("TerminationMessagePath", "string"),
    ("TerminationMessagePolicy", "core.TerminationMessagePolicy"),
    ("ImagePullPolicy", "core.PullPolicy"),
    ("SecurityContext", "*core.SecurityContext"),
    ("Stdin", "bool"),
    ("StdinOnce", "bool"),
    ("TTY", "bool"),
]
_VOLUME_SOURCES = (
    "HostPath EmptyDir GCEPersistentDisk AWSElasticBlockStore GitRepo Secret NFS ISCSI Glusterfs "
    "PersistentVolumeClaim RBD Quobyte FlexVolume Cinder CephFS Flocker DownwardAPI FC AzureFile ConfigMap "
    "VsphereVolume AzureDisk PhotonPersistentDisk Projected PortworxVolume ScaleIO StorageOS CSI Ephemeral"
).split()
_SOURCE_TYPES = {
    "PersistentVolumeClaim": "PersistentVolumeClaimVolumeSource",
    "Ephemeral": "EphemeralVolumeSource",
}

TYPES: dict[str, Fields] = {
    "core.PodTemplateSpec": [("ObjectMeta", "v1.ObjectMeta"), ("Spec", "core.PodSpec")],
    "v1.ObjectMeta": [
        ("Name", "string"),
        ("GenerateName", "string"),
        ("Namespace", "string"),
        ("SelfLink", "string"),
        ("UID", "types.UID"),
        ("ResourceVersion", "string"),
        ("Generation", "int64"),
        ("CreationTimestamp", "v1.Time"),
        ("DeletionTimestamp", "*v1.Time"),
        ("DeletionGracePeriodSeconds", "*int64"),
        ("Labels", "map[string]string"),
        ("Annotations", "map[string]string"),
        ("OwnerReferences", "[]v1.OwnerReference"),
        ("Finalizers", "[]string"),
        ("ManagedFields", "[]v1.ManagedFieldsEntry"),
    ],
    "v1.OwnerReference": [
        ("APIVersion", "string"),
        ("Kind", "string"),
        ("Name", "string"),
        ("UID", "types.UID"),
        ("Controller", "*bool"),
        ("BlockOwnerDeletion", "*bool"),
    ],
    "v1.ManagedFieldsEntry": [
        ("Manager", "string"),
        ("Operation", "v1.ManagedFieldsOperationType"),
        ("APIVersion", "string"),
        ("Time", "*v1.Time"),
        ("FieldsType", "string"),
        ("FieldsV1", "*v1.FieldsV1"),
        ("Subresource", "string"),
    ],
    "core.PodSpec": [
        ("Volumes", "[]core.Volume"),
        ("InitContainers", "[]core.Container"),
        ("Containers", "[]core.Container"),
        ("EphemeralContainers", "[]core.EphemeralContainer"),
        ("RestartPolicy", "core.RestartPolicy"),
        ("TerminationGracePeriodSeconds", "*int64"),
        ("ActiveDeadlineSeconds", "*int64"),
        ("DNSPolicy", "core.DNSPolicy"),
        ("NodeSelector", "map[string]string"),
        ("ServiceAccountName", "string"),
        ("AutomountServiceAccountToken", "*bool"),
        ("NodeName", "string"),
        ("SecurityContext", "*core.PodSecurityContext"),
        ("ImagePullSecrets", "[]core.LocalObjectReference"),
        ("Hostname", "string"),
        ("Subdomain", "string"),
        ("SetHostnameAsFQDN", "*bool"),
        ("Affinity", "*core.Affinity"),
        ("SchedulerName", "string"),
        ("Tolerations", "[]core.Toleration"),
        ("HostAliases", "[]core.HostAlias"),
        ("PriorityClassName", "string"),
        ("Priority", "*int32"),
        ("PreemptionPolicy", "*core.PreemptionPolicy"),
        ("DNSConfig", "*core.PodDNSConfig"),
        ("ReadinessGates", "[]core.PodReadinessGate"),
        ("RuntimeClassName", "*string"),
        ("Overhead", "core.ResourceList"),
        ("EnableServiceLinks", "*bool"),
        ("TopologySpreadConstraints", "[]core.TopologySpreadConstraint"),
        ("OS", "*core.PodOS"),
        ("SchedulingGates", "[]core.PodSchedulingGate"),
        ("ResourceClaims", "[]core.PodResourceClaim"),
    ],
    "core.Container": _CONTAINER,
    "core.EphemeralContainer": [
        ("EphemeralContainerCommon", "core.EphemeralContainerCommon"),
        ("TargetContainerName", "string"),
    ],
    "core.EphemeralContainerCommon": _CONTAINER,
    "core.ResourceRequirements": [
        ("Limits", "core.ResourceList"),
        ("Requests", "core.ResourceList"),
        ("Claims", "[]core.ResourceClaim"),
    ],
    "core.ResourceClaim": [("Name", "string")],
    "core.ContainerPort": [
        ("Name", "string"),
        ("HostPort", "int32"),
        ("ContainerPort", "int32"),
        ("Protocol", "core.Protocol"),
        ("HostIP", "string"),
    ],
    "core.EnvFromSource": [
        ("Prefix", "string"),
        ("ConfigMapRef", "*core.ConfigMapEnvSource"),
        ("SecretRef", "*core.SecretEnvSource"),
    ],
    "core.EnvVar": [("Name", "string"), ("Value", "string"), ("ValueFrom", "*core.EnvVarSource")],
    "core.ContainerResizePolicy": [
        ("ResourceName", "core.ResourceName"),
        ("RestartPolicy", "core.ResourceResizeRestartPolicy"),
    ],
    "core.VolumeMount": [
        ("Name", "string"),
        ("ReadOnly", "bool"),
        ("MountPath", "string"),
        ("SubPath", "string"),
        ("MountPropagation", "*core.MountPropagationMode"),
        ("SubPathExpr", "string"),
    ],
    "core.VolumeDevice": [("Name", "string"), ("DevicePath", "string")],
    "core.Volume": [("Name", "string"), ("VolumeSource", "core.VolumeSource")],
    "core.VolumeSource": [(n, f"*core.{_SOURCE_TYPES.get(n, n + 'VolumeSource')}") for n in _VOLUME_SOURCES],
    "core.LocalObjectReference": [("Name", "string")],
    "core.Toleration": [
        ("Key", "string"),
        ("Operator", "core.TolerationOperator"),
        ("Value", "string"),
        ("Effect", "core.TaintEffect"),
        ("TolerationSeconds", "*int64"),
    ],
    "core.HostAlias": [("IP", "string"), ("Hostnames", "[]string")],
    "core.PodReadinessGate": [("ConditionType", "core.PodConditionType")],
    "core.TopologySpreadConstraint": [
        ("MaxSkew", "int32"),
        ("TopologyKey", "string"),
        ("WhenUnsatisfiable", "core.UnsatisfiableConstraintAction"),
        ("LabelSelector", "*v1.LabelSelector"),
        ("MinDomains", "*int32"),
        ("NodeAffinityPolicy", "*core.NodeInclusionPolicy"),
        ("NodeTaintsPolicy", "*core.NodeInclusionPolicy"),
        ("MatchLabelKeys", "[]string"),
    ],
    "core.PodSchedulingGate": [("Name", "string")],
    "core.PodResourceClaim": [("Name", "string"), ("Source", "core.ClaimSource")],
    "core.ClaimSource": [("ResourceClaimName", "*string"), ("ResourceClaimTemplateName", "*string")],
    # reached only by gocmpdiff.py (%#v prints these pointers as addresses)
    "core.PersistentVolumeClaimSpec": [
        ("AccessModes", "[]core.PersistentVolumeAccessMode"),
        ("Selector", "*v1.LabelSelector"),
        ("Resources", "core.ResourceRequirements"),
        ("VolumeName", "string"),
        ("StorageClassName", "*string"),
        ("VolumeMode", "*core.PersistentVolumeMode"),
        ("DataSource", "*core.TypedLocalObjectReference"),
        ("DataSourceRef", "*core.TypedObjectReference"),
    ],
    "core.ProjectedVolumeSource": [("Sources", "[]core.VolumeProjection"), ("DefaultMode", "*int32")],
    "core.VolumeProjection": [
        ("Secret", "*core.SecretProjection"),
        ("DownwardAPI", "*core.DownwardAPIProjection"),
        ("ConfigMap", "*core.ConfigMapProjection"),
        ("ServiceAccountToken", "*core.ServiceAccountTokenProjection"),
    ],
    "core.ServiceAccountTokenProjection": [
        ("Audience", "string"),
        ("ExpirationSeconds", "int64"),
        ("Path", "string"),
    ],
    "core.ConfigMapProjection": [
        ("LocalObjectReference", "core.LocalObjectReference"),
        ("Items", "[]core.KeyToPath"),
        ("Optional", "*bool"),
    ],
    "core.SecretProjection": [
        ("LocalObjectReference", "core.LocalObjectReference"),
        ("Items", "[]core.KeyToPath"),
        ("Optional", "*bool"),
    ],
    "core.KeyToPath": [("Key", "string"), ("Path", "string"), ("Mode", "*int32")],
    "core.DownwardAPIProjection": [("Items", "[]core.DownwardAPIVolumeFile")],
    "core.DownwardAPIVolumeFile": [
        ("Path", "string"),
        ("FieldRef", "*core.ObjectFieldSelector"),
        ("ResourceFieldRef", "*core.ResourceFieldSelector"),
        ("Mode", "*int32"),
    ],
    "core.ObjectFieldSelector": [("APIVersion", "string"), ("FieldPath", "string")],
    # resource.Quantity's unexported fields (it is compared by its Equal method, printed field by field)
    "resource.Quantity": [
        ("i", "resource.int64Amount"),
        ("d", "resource.infDecAmount"),
        ("s", "string"),
        ("Format", "resource.Format"),
    ],
    "resource.int64Amount": [("value", "int64"), ("scale", "resource.Scale")],
    "resource.infDecAmount": [("Dec", "*inf.Dec")],
}
# JSON names that are not the Go name with its first letter lowered
_JSON = {"UID": "uid", "TTY": "tty", "IP": "ip", "OS": "os", "HostIP": "hostIP", "FC": "fc", "CSI": "csi"}
_JSON |= {"ISCSI": "iscsi", "NFS": "nfs", "RBD": "rbd", "CephFS": "cephfs", "DNSPolicy": "dnsPolicy"}
_JSON |= {"DNSConfig": "dnsConfig", "APIVersion": "apiVersion", "SetHostnameAsFQDN": "setHostnameAsFQDN"}
_JSON |= {"GCEPersistentDisk": "gcePersistentDisk", "AWSElasticBlockStore": "awsElasticBlockStore"}
_JSON |= {"ScaleIO": "scaleIO", "StorageOS": "storageos", "FieldsV1": "fieldsV1"}
_INTS = {"int", "int32", "int64"}
_ADDRESS = "0xc000a1b2c0"  # any address: Go prints where the value lives
_EMBEDDED = {
    "ObjectMeta": None,
    "EphemeralContainerCommon": None,
    "VolumeSource": None,
    "LocalObjectReference": None,
}


def json_name(go: str) -> str:
    return _JSON.get(go) or go[0].lower() + go[1:]


def go_struct(value: Any, gotype: str) -> str:
    """`value` (the JSON form) printed as Go's %#v of `gotype`."""
    if gotype.startswith("*"):
        if value is None:
            return "<nil>" if gotype == "*v1.Time" else f"({gotype})(nil)"
        return f"({gotype})({_ADDRESS})"
    if gotype.startswith("[]"):
        if value is None:
            return f"{gotype}(nil)"
        return gotype + "{" + ", ".join(go_struct(v, gotype[2:]) for v in value) + "}"
    if gotype.startswith("map[") or gotype == "core.ResourceList":
        if value is None:
            return f"{gotype}(nil)"
        printer = _quantity if gotype == "core.ResourceList" else _string
        items = ", ".join(f"{_string(k)}:{printer(v)}" for k, v in sorted(value.items()))
        return gotype + "{" + items + "}"
    if gotype in TYPES:
        return _struct(value if isinstance(value, dict) else {}, gotype)
    if gotype == "v1.Time":
        return _time(value)
    if gotype in _INTS:
        return str(int(value or 0))
    if gotype == "bool":
        return "true" if value else "false"
    return _string(value)  # string and the named string types


def _struct(value: dict[str, Any], gotype: str) -> str:
    parts = []
    for go, sub in TYPES[gotype]:
        # embedded structs (ObjectMeta as metadata, the others inline) take their fields from here
        if go == "ObjectMeta":
            part = value.get("metadata")
        elif go in _EMBEDDED:
            part = value
        else:
            part = value.get(json_name(go))
        parts.append(f"{go}:{go_struct(part, sub)}")
    return gotype + "{" + ", ".join(parts) + "}"


def _string(v: Any) -> str:
    return orjson.dumps("" if v is None else str(v)).decode()


def _time(v: Any) -> str:
    if not v:
        return "time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)"
    t = datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    month = t.strftime("%B")
    return f"time.Date({t.year}, time.{month}, {t.day}, {t.hour}, {t.minute}, {t.second}, 0, time.UTC)"


def quantity_fields(v: Any) -> dict[str, Any]:
    """resource.Quantity's fields for `v` as parsed: i (int64Amount value and scale), d, s, Format."""
    try:
        value = parse_quantity(v)
    except (QuantityError, TypeError):
        value = Fraction(0)
    scale = 0
    while value.denominator != 1:
        value *= 10
        scale -= 1
    fmt = "BinarySI" if str(v).endswith("i") else "DecimalSI"
    return {"i": {"value": value.numerator, "scale": scale}, "d": None, "s": str(v or ""), "format": fmt}


def _quantity(v: Any) -> str:
    q = quantity_fields(v)
    amount = f"resource.int64Amount{{value:{q['i']['value']}, scale:{q['i']['scale']}}}"
    return (
        f"resource.Quantity{{i:{amount}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, "
        f"s:{_string(v)}, Format:{_string(q['format'])}}}"
    )
