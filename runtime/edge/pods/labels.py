"""Container identity: the labels that let a restarted runtime adopt what it created, and only that.

Docker names follow kubelet's scheme (`kedge_<container>_<pod>_<ns>_<uid8>_<restarts>`) so `docker ps`
reads like `crictl ps`; the labels, never the names, are the source of truth.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MANAGED = "io.kedge.managed"
NODE = "io.kedge.node"
POD_UID = "io.kedge.pod.uid"
POD_NS = "io.kedge.pod.namespace"
POD_NAME = "io.kedge.pod.name"
CONTAINER = "io.kedge.container.name"
KIND = "io.kedge.container.kind"  # sandbox | init | app
RESTARTS = "io.kedge.container.restartCount"
HASH = "io.kedge.container.hash"
GRACE = "io.kedge.pod.terminationGracePeriod"
SANDBOX_NAME = "POD"

# Fields whose change means "recreate the container" (kubelet hashes the container spec likewise).
_HASHED = (
    "image",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "ports",
    "volumeMounts",
    "securityContext",
    "resources",
    "tty",
    "stdin",
    "volumeDevices",
)


def selector(node: str) -> dict[str, str]:
    return {MANAGED: "true", NODE: node}


def spec_hash(container: dict[str, Any]) -> str:
    subset = {k: container.get(k) for k in _HASHED if container.get(k) not in (None, [], {})}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:16]


def for_container(
    node: str, pod: dict[str, Any], name: str, kind: str, restarts: int, hash_: str = ""
) -> dict[str, str]:
    meta = pod["metadata"]
    spec = pod.get("spec", {})
    return {
        MANAGED: "true",
        NODE: node,
        POD_UID: meta["uid"],
        POD_NS: meta.get("namespace", "default"),
        POD_NAME: meta["name"],
        CONTAINER: name,
        KIND: kind,
        RESTARTS: str(restarts),
        HASH: hash_,
        GRACE: str(spec.get("terminationGracePeriodSeconds", 30)),
    }


def docker_name(pod: dict[str, Any], container: str, restarts: int) -> str:
    meta = pod["metadata"]
    return f"kedge_{container}_{meta['name']}_{meta.get('namespace', 'default')}_{meta['uid'][:8]}_{restarts}"
