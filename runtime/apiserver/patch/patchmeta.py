"""Patch metadata of the built-in kinds: the patchStrategy / patchMergeKey struct tags, by struct.

Strategic merge patch and server-side apply both need to know, for every list field, whether it is a
map keyed by a field (containers by name, conditions by type), a set of scalars (finalizers) or atomic
(tolerations, node taints, container statuses). This is that table for the kinds kedge serves, taken
from the Kubernetes API types; kinds without an entry have only atomic lists.
"""

from __future__ import annotations

# (patchStrategy, patchMergeKey, element or field struct name)
Field = tuple[str, str, str | None]
_M = "merge"


def _s(name: str) -> Field:
    return ("", "", name)


SCHEMAS: dict[str, dict[str, Field]] = {
    "ObjectMeta": {"ownerReferences": (_M, "uid", None), "finalizers": (_M, "", None)},
    "PodSpec": {
        "containers": (_M, "name", "Container"),
        "initContainers": (_M, "name", "Container"),
        "ephemeralContainers": (_M, "name", "Container"),
        "volumes": ("merge,retainKeys", "name", None),
        "imagePullSecrets": (_M, "name", None),
        "hostAliases": (_M, "ip", None),
        "topologySpreadConstraints": (_M, "topologyKey", None),
        "resourceClaims": ("merge,retainKeys", "name", None),
        "schedulingGates": (_M, "name", None),
    },
    "Container": {
        "ports": (_M, "containerPort", None),
        "env": (_M, "name", None),
        "volumeMounts": (_M, "mountPath", None),
        "volumeDevices": (_M, "devicePath", None),
    },
    "PodStatus": {
        "conditions": (_M, "type", None),
        "podIPs": (_M, "ip", None),
        "hostIPs": (_M, "ip", None),
        "resourceClaimStatuses": ("merge,retainKeys", "name", None),
    },
    "PodTemplateSpec": {"metadata": _s("ObjectMeta"), "spec": _s("PodSpec")},
    "Pod": {"metadata": _s("ObjectMeta"), "spec": _s("PodSpec"), "status": _s("PodStatus")},
    "PodTemplate": {"metadata": _s("ObjectMeta"), "template": _s("PodTemplateSpec")},
    "WorkloadSpec": {"template": _s("PodTemplateSpec"), "strategy": ("retainKeys", "", None)},
    "ConditionsStatus": {"conditions": (_M, "type", None)},
    "JobTemplateSpec": {"metadata": _s("ObjectMeta"), "spec": _s("WorkloadSpec")},
    "CronJobSpec": {"jobTemplate": _s("JobTemplateSpec")},
    "CronJob": {"metadata": _s("ObjectMeta"), "spec": _s("CronJobSpec")},
    "Workload": {"metadata": _s("ObjectMeta"), "spec": _s("WorkloadSpec"), "status": _s("ConditionsStatus")},
    "NodeSpec": {"podCIDRs": (_M, "", None)},
    "NodeStatus": {"conditions": (_M, "type", None), "addresses": (_M, "type", None)},
    "Node": {"metadata": _s("ObjectMeta"), "spec": _s("NodeSpec"), "status": _s("NodeStatus")},
    "ServiceSpec": {"ports": (_M, "port", None)},
    "Service": {"metadata": _s("ObjectMeta"), "spec": _s("ServiceSpec"), "status": _s("ConditionsStatus")},
    "Namespace": {"metadata": _s("ObjectMeta"), "status": _s("ConditionsStatus")},
    "ServiceAccount": {"metadata": _s("ObjectMeta"), "secrets": (_M, "name", None)},
    "Object": {"metadata": _s("ObjectMeta")},
}

KIND_SCHEMA = {
    "Pod": "Pod",
    "PodTemplate": "PodTemplate",
    "Deployment": "Workload",
    "ReplicaSet": "Workload",
    "DaemonSet": "Workload",
    "StatefulSet": "Workload",
    "ReplicationController": "Workload",
    "Job": "Workload",
    "CronJob": "CronJob",
    "Node": "Node",
    "Service": "Service",
    "Namespace": "Namespace",
    "ServiceAccount": "ServiceAccount",
}

BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "storage.k8s.io",
    "networking.k8s.io",
    "discovery.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "resource.k8s.io",
}

UNSUPPORTED_MEDIA = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def supports_strategic_merge(api_version: str) -> bool:
    """Built-in types have struct tags; custom resources do not (415 from a real server)."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return group in BUILTIN_GROUPS
