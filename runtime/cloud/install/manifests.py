"""Render templates/ into the objects `kedge init` applies (plain YAML + `{{ name }}`, no Helm).

Why so simple: the manifests must be readable as they ship, `--dry-run -o yaml` must print exactly
what is applied, and the single binary must not need a template engine. Values are substituted as
text; a value that must be a YAML string with newlines (the cloud.toml) is passed JSON-encoded,
which YAML reads as a double-quoted scalar. An unknown `{{ name }}` is an error, never left in.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from runtime import __version__
from runtime.cloud.install.versions import for_server
from runtime.config import CloudConfig, dump
from runtime.errors import KedgeError, UsageError
from runtime.templates import templates_dir

NAMESPACE = "kubeedge"
HEALTH_PORT = 10550
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
Mode = Literal["cluster", "host"]
_VAR = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")

# What each mode installs: in-cluster runs the cloud as a Deployment; host/embedded run it as a
# local process, so they need the CRDs, namespace, RBAC and FlowSchema but no workload objects.
CLUSTER_FILES = (
    "00-namespace.yaml", "crds/*.yaml", "20-rbac.yaml", "30-flowschema.yaml",
    "40-configmap.yaml", "50-deployment.yaml", "60-service.yaml", "70-tunnel-dnat.yaml",
)  # fmt: skip
HOST_FILES = ("00-namespace.yaml", "crds/*.yaml", "20-rbac.yaml", "30-flowschema.yaml", "70-tunnel-dnat.yaml")
# --stream-tunnel: where API servers reach the stream endpoint (docs/streams.md). none by default in a
# cluster (dnat is a privileged host-network DaemonSet editing the control-plane hosts' nat tables: an
# operator's choice, impossible on managed clusters); direct for --embedded (its own API server, one host)
STREAM_TUNNELS = ("none", "direct", "dnat")


@dataclass
class InstallOptions:
    mode: Mode = "cluster"
    image: str = f"kedge/kedge:{__version__}"
    pull_policy: str = "IfNotPresent"
    replicas: int = 1
    service_type: str = "ClusterIP"
    advertise_addresses: list[str] = field(default_factory=list)
    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    memory_limit: str = "512Mi"
    namespace: str = NAMESPACE
    with_flowschema: bool = True
    stream_tunnel: str = "none"

    def validate(self) -> None:
        if self.service_type not in SERVICE_TYPES:
            raise UsageError(
                f"--service-type {self.service_type}: expected one of {', '.join(SERVICE_TYPES)}"
            )
        if self.stream_tunnel not in STREAM_TUNNELS:
            raise UsageError(
                f"--stream-tunnel {self.stream_tunnel}: expected one of {', '.join(STREAM_TUNNELS)}"
            )
        if self.replicas < 1:
            raise UsageError(f"--replicas {self.replicas}: must be at least 1")


def cloud_config(opts: InstallOptions) -> CloudConfig:
    """The cloud.toml the in-cluster Deployment runs with (host mode writes its own, see init)."""
    cfg = CloudConfig()
    cfg.advertise_addresses = list(opts.advertise_addresses)
    cfg.namespace = opts.namespace
    cfg.hub.bind = "0.0.0.0"
    cfg.metrics_address = f"0.0.0.0:{HEALTH_PORT}"
    cfg.kubelet_endpoint.mode = opts.stream_tunnel  # type: ignore[assignment]  # validated above
    return cfg


def values(opts: InstallOptions) -> dict[str, str]:
    toml = dump(cloud_config(opts))
    return {
        "namespace": opts.namespace,
        "image": opts.image,
        "pull_policy": opts.pull_policy,
        "replicas": str(opts.replicas),
        "service_type": opts.service_type,
        "version": __version__,
        "cloud_toml": json.dumps(toml),
        "config_hash": hashlib.sha256(toml.encode()).hexdigest()[:16],
        "cpu_request": opts.cpu_request,
        "memory_request": opts.memory_request,
        "memory_limit": opts.memory_limit,
    }


def substitute(text: str, vals: dict[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in vals:
            raise KedgeError(f"template {where}: unknown value {{{{ {name} }}}}", hint="a packaging bug")
        return vals[name]

    return _VAR.sub(one, text)


def template_files(mode: Mode, base: Path | None = None) -> list[Path]:
    base = base or templates_dir()
    out: list[Path] = []
    for pattern in CLUSTER_FILES if mode == "cluster" else HOST_FILES:
        found = sorted(base.glob(pattern))
        if not found:
            raise KedgeError(f"templates: {base / pattern} missing", hint="reinstall kedge")
        out += found
    return out


def render(
    opts: InstallOptions, base: Path | None = None, *, served: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every object to apply, in apply order (namespace, CRDs, RBAC, …, Service). With `served`
    (the server's group/versions, from discovery) release-dependent objects get the newest
    apiVersion the server serves (versions.py); without it, the newest of all."""
    opts.validate()
    vals = values(opts)
    objs: list[dict[str, Any]] = []
    for path in template_files(opts.mode, base):
        if path.name == "30-flowschema.yaml" and not opts.with_flowschema:
            continue
        if path.name == "70-tunnel-dnat.yaml" and opts.stream_tunnel != "dnat":
            continue
        text = substitute(path.read_text(), vals, path.name)
        objs += [doc for doc in yaml.safe_load_all(text) if doc]
    return objs if served is None else for_server(objs, served)[0]


def to_yaml(objs: list[dict[str, Any]]) -> str:
    """A multi-document stream `kubectl apply -f -` accepts."""
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in objs)
