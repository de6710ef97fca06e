"""The Node object this edge registers, built from the machine (design.md §5, recorded node insert).

Fields follow what a real edgecore sent (capture seq 6): os/arch and role labels, capacity and
allocatable for cpu, memory, pods and ephemeral-storage (hugepages 0), four conditions, InternalIP (the
one node IP, which pods also report as hostIP) and Hostname (the node name: kube-apiserver prefers it
when it dials the node, e.g. for `kubectl logs`), the kubelet endpoint port, and nodeInfo with
machine/system/boot ids. Reading a handful of small /proc and /sys files is cheap enough to do on the
event loop.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import __version__
from runtime.fsutil import write_atomic

KUBE_VERSION = "v1.32.0"
KUBELET_VERSION = f"{KUBE_VERSION}-kedge.{__version__}"
KUBELET_PORT = 10350  # edgecore's (recorded daemonEndpoints)
MAX_PODS = 110
RESERVED_MEMORY_KI = 100 * 1024  # edgecore reserves 100 Mi (recorded capacity - allocatable)
# kubelet's default eviction threshold nodefs.available<10%, a float32 in Go: 0.1 as float32 (recorded)
EVICTION_NODEFS = 0.10000000149011612
EDGE_ROLE = "node-role.kubernetes.io/edge"
ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
CONDITIONS = (
    (
        "MemoryPressure",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
        "KubeletHasInsufficientMemory",
        "kubelet has insufficient memory available",
    ),
    (
        "DiskPressure",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
        "KubeletHasDiskPressure",
        "kubelet has disk pressure",
    ),
    (
        "PIDPressure",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
        "KubeletHasInsufficientPID",
        "kubelet has insufficient PID available",
    ),
)


def rfc3339(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            out[key] = int(rest.split()[0])
    return out


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def node_ip(configured: str = "") -> str:
    """The node's one IP (edgecore's ``edged.nodeIP``): ``configured`` (edge.toml ``node.ip``), else the
    address of the interface holding the default route (no packet is sent), else loopback."""
    if configured:
        return configured
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return str(s.getsockname()[0])
    return "127.0.0.1"


@dataclass
class Facts:
    """What the machine says about itself; ``collect`` fills it, tests may build one by hand."""

    hostname: str
    ip: str
    cpus: int
    memory_ki: int
    disk_bytes: int
    disk_free_bytes: int
    mem_available_ki: int
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel: str
    os_image: str
    arch: str
    runtime_version: str = "docker://unknown"
    pids_free: int = 1 << 20
    extra: dict[str, str] = field(default_factory=dict)
    runtime_down: str = ""  # why the container runtime is not answering ("" while it is)


def machine_id(state_dir: Path, etc: Path = Path("/")) -> str:
    """The host's machine id, or — on a rootfs without one (a bare container, a minimal image) — one
    generated once and kept under the edge's state, so the Node's machineID stays put across restarts."""
    found = _read(str(etc / "etc/machine-id")) or _read(str(etc / "var/lib/dbus/machine-id"))
    if found:
        return found
    own = state_dir / "machine-id"
    kept = _read(str(own))
    if len(kept) == 32:
        return kept
    generated = uuid.uuid4().hex
    with contextlib.suppress(OSError):  # a read-only state still reports an id, just not a lasting one
        write_atomic(own, generated + "\n", mode=0o644)
    return generated


def collect(state_dir: Path, name: str, ip: str, runtime_version: str = "", runtime_down: str = "") -> Facts:
    """The machine's facts for node ``name`` (its Hostname address) with node IP ``ip``."""
    mem = _meminfo()
    st = os.statvfs(state_dir if state_dir.exists() else "/")
    mid = machine_id(state_dir)
    pid_max = int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)
    running = len([d for d in os.listdir("/proc") if d.isdigit()])
    return Facts(
        hostname=name,
        ip=ip,
        cpus=os.cpu_count() or 1,
        memory_ki=mem.get("MemTotal", 0),
        mem_available_ki=mem.get("MemAvailable", mem.get("MemFree", 0)),
        disk_bytes=st.f_blocks * st.f_frsize,
        disk_free_bytes=st.f_bavail * st.f_frsize,
        machine_id=mid,
        system_uuid=(_read("/sys/class/dmi/id/product_uuid") or mid).lower(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel=platform.release(),
        os_image=os_image(),
        arch=ARCH.get(platform.machine(), platform.machine()),
        runtime_version=runtime_version or "docker://unknown",
        pids_free=pid_max - running,
        runtime_down=runtime_down,
    )


def parse_taint(text: str) -> dict[str, str]:
    """``key=value:Effect`` or ``key:Effect`` → a Taint."""
    kv, _, effect = text.rpartition(":")
    if not kv:
        raise ValueError(f"taint {text!r}: expected key[=value]:Effect")
    key, _, value = kv.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def conditions(facts: Facts, now: str, previous: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The four node conditions; lastTransitionTime kept from ``previous`` while the status holds."""
    pressure = {
        "MemoryPressure": facts.mem_available_ki < RESERVED_MEMORY_KI,
        "DiskPressure": facts.disk_bytes > 0 and facts.disk_free_bytes < 0.1 * facts.disk_bytes,
        "PIDPressure": facts.pids_free < 1000,
    }
    prev = {c.get("type"): c for c in previous or []}
    out = []
    for ctype, ok_reason, ok_msg, bad_reason, bad_msg in CONDITIONS:
        bad = pressure[ctype]
        out.append(
            {
                "type": ctype,
                "status": "True" if bad else "False",
                "reason": bad_reason if bad else ok_reason,
                "message": bad_msg if bad else ok_msg,
            }
        )
    if facts.runtime_down:  # kubelet's NotReady for a runtime that does not answer its status call
        msg = f"container runtime is down: {facts.runtime_down}"
        out.append({"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": msg})
    else:
        msg = "edge is posting ready status"
        out.append({"type": "Ready", "status": "True", "reason": "EdgeReady", "message": msg})
    for c in out:
        old = prev.get(c["type"])
        c["lastHeartbeatTime"] = now
        keep = old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime")
        c["lastTransitionTime"] = old["lastTransitionTime"] if keep and old else now
    return [
        {k: c[k] for k in ("type", "status", "lastHeartbeatTime", "lastTransitionTime", "reason", "message")}
        for c in out
    ]


def node_status(facts: Facts, now: str, previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    disk_ki = facts.disk_bytes // 1024
    capacity = {
        "cpu": str(facts.cpus),
        "ephemeral-storage": f"{disk_ki}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{facts.memory_ki}Ki",
        "pods": str(MAX_PODS),
    }
    allocatable = dict(capacity)
    allocatable["ephemeral-storage"] = str(facts.disk_bytes - int(facts.disk_bytes * EVICTION_NODEFS))
    allocatable["memory"] = f"{max(0, facts.memory_ki - RESERVED_MEMORY_KI)}Ki"
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions(facts, now, previous),
        "addresses": [
            {"type": "InternalIP", "address": facts.ip},
            {"type": "Hostname", "address": facts.hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel,
            "osImage": facts.os_image,
            "containerRuntimeVersion": facts.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.arch,
        },
    }


def build_node(
    name: str,
    facts: Facts,
    *,
    labels: dict[str, str] | None = None,
    taints: list[str] | None = None,
    with_edge_taint: bool = False,
    now: str | None = None,
) -> dict[str, Any]:
    """The Node for the registration request (``insert null/node/<name>``)."""
    node_labels = {
        "beta.kubernetes.io/arch": facts.arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/agent": "",
        EDGE_ROLE: "",
    }
    node_labels.update(labels or {})
    spec_taints = [parse_taint(t) for t in taints or []]
    if with_edge_taint and not any(t["key"] == EDGE_ROLE for t in spec_taints):
        spec_taints.append({"key": EDGE_ROLE, "effect": "NoSchedule"})  # as keadm --with-edge-taint
    spec: dict[str, Any] = {"taints": spec_taints} if spec_taints else {}
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": None,
            "labels": node_labels,
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
        "status": node_status(facts, now or rfc3339()),
    }
