"""Pod spec → docker create arguments, for the sandbox and for each (init or app) container.

Pure functions: given the pod, the resolved env and the materialised volumes they return the docker
`create_container` config and `create_host_config` kwargs. Containers join the sandbox's network and
IPC namespaces (`container:<id>`) as kubelet's do; host ports are published on the sandbox, the owner
of the network namespace. Restarts are kedge's job, so docker's restart policy stays "no".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.edge.pods import labels
from runtime.edge.pods.envs import expand
from runtime.edge.pods.refs import RefMissing
from runtime.edge.pods.sandbox import PAUSE_IMAGE
from runtime.edge.pods.volumes import Volume
from runtime.quantity import parse_quantity

LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}}


def log_config(max_mib: int, max_files: int) -> dict[str, Any]:
    """Docker's log options for the pods' containers (kubelet's containerLogMaxSize/-MaxFiles)."""
    return {"type": "json-file", "config": {"max-size": f"{max_mib}m", "max-file": str(max_files)}}


SECCOMP_DIR = Path("/var/lib/kubelet/seccomp")  # where kubelet looks for `Localhost` profiles


def seccomp_opts(*contexts: dict[str, Any] | None) -> list[str]:
    """docker security options for the first seccompProfile among `contexts` (container, then pod).

    kubelet's default (SeccompDefault off) is Unconfined, which it passes to the runtime explicitly;
    RuntimeDefault keeps docker's filter (≈ 25-30 ms of runc time per start); Localhost reads the
    profile from kubelet's seccomp directory, as docker's own `--security-opt seccomp=FILE` does.
    """
    profile: dict[str, Any] = next(
        (sc["seccompProfile"] for sc in contexts if sc and sc.get("seccompProfile")), {}
    )
    kind = profile.get("type") or "Unconfined"
    if kind == "RuntimeDefault":
        return []
    if kind == "Localhost":
        path = SECCOMP_DIR / str(profile.get("localhostProfile") or "")
        try:
            return [f"seccomp={path.read_text()}"]
        except OSError as exc:
            raise RefMissing(f"cannot load seccomp profile {path!s}: {exc.strerror}") from None
    return ["seccomp=unconfined"]


def host_network(pod: dict[str, Any]) -> bool:
    return bool(pod.get("spec", {}).get("hostNetwork"))


def sandbox_config(
    pod: dict[str, Any], node: str, attempt: int
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    spec = pod.get("spec", {})
    ports: dict[str, int | tuple[str, int]] = {}
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                proto = (p.get("protocol") or "TCP").lower()
                hp = int(p["hostPort"])
                ports[f"{p['containerPort']}/{proto}"] = (p["hostIP"], hp) if p.get("hostIP") else hp
    config = {
        "image": PAUSE_IMAGE,
        "labels": labels.for_container(node, pod, labels.SANDBOX_NAME, "sandbox", attempt),
        "hostname": (spec.get("hostname") or pod["metadata"]["name"])[:63],
        "ports": [tuple(k.split("/")) for k in ports] or None,
    }
    host: dict[str, Any] = {
        "port_bindings": {k: v for k, v in ports.items()} or None,
        "ipc_mode": "shareable",
        "restart_policy": {"Name": "no"},
        "log_config": LOG_CONFIG,
    }
    # kubelet runs the sandbox unconfined unless the pod asks for a profile; it runs only /pause
    if opts := seccomp_opts(spec.get("securityContext")):
        host["security_opt"] = opts
    return labels.docker_name(pod, labels.SANDBOX_NAME, attempt), config, host


def _security(pod: dict[str, Any], c: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    psc = pod.get("spec", {}).get("securityContext") or {}
    sc = c.get("securityContext") or {}
    host: dict[str, Any] = {}
    if sc.get("privileged"):
        host["privileged"] = True
    caps = sc.get("capabilities") or {}
    if caps.get("add"):
        host["cap_add"] = [str(x) for x in caps["add"]]
    if caps.get("drop"):
        host["cap_drop"] = [str(x) for x in caps["drop"]]
    if sc.get("readOnlyRootFilesystem"):
        host["read_only"] = True
    if not sc.get("privileged") and (opts := seccomp_opts(sc, psc)):
        host["security_opt"] = opts
    groups = [str(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.append(str(psc["fsGroup"]))
    if groups:
        host["group_add"] = groups
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    gid = sc.get("runAsGroup", psc.get("runAsGroup"))
    user = None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid))
    return host, user


def _resources(c: dict[str, Any]) -> dict[str, Any]:
    res = c.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    host: dict[str, Any] = {}
    if "memory" in limits:
        host["mem_limit"] = int(parse_quantity(limits["memory"]))
    if "cpu" in limits:
        host["nano_cpus"] = int(parse_quantity(limits["cpu"]) * 10**9)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        host["cpu_shares"] = max(2, int(parse_quantity(cpu_req) * 1024))
    return host


def _sub_path(root: str, mount: dict[str, Any]) -> str:
    """The host path of a mount's subPath, refused (CreateContainerConfigError, as kubelet) when it is
    absolute or resolves — through ".." or a symlink a container left in the volume — outside the volume."""
    sub = str(mount["subPath"])
    base = Path(root).resolve()
    target = (base / sub).resolve()
    if sub.startswith("/") or not target.is_relative_to(base):
        raise RefMissing(
            f"failed to prepare subPath for volumeMount {mount.get('name')!r}: {sub!r} is outside the volume"
        )
    return str(target)


def _mounts(pod: dict[str, Any], c: dict[str, Any], volumes: dict[str, Volume]) -> dict[str, Any]:
    binds: list[str] = []
    tmpfs: dict[str, str] = {}
    devices: list[str] = []
    for m in c.get("volumeMounts") or []:
        vol = volumes.get(m["name"])
        if vol is None:
            continue
        ro = bool(m.get("readOnly")) or vol.read_only
        if vol.kind == "tmpfs":
            tmpfs[m["mountPath"]] = "rw"
        elif vol.kind == "device":
            devices.append(f"{vol.host_path}:{m['mountPath']}:rwm")
        else:
            src = _sub_path(vol.host_path, m) if m.get("subPath") else vol.host_path
            binds.append(f"{src}:{m['mountPath']}:{'ro' if ro else 'rw'}")
    out: dict[str, Any] = {}
    if binds:
        out["binds"] = binds
    if tmpfs:
        out["tmpfs"] = tmpfs
    if devices:
        out["devices"] = devices
    return out


def container_config(
    pod: dict[str, Any],
    c: dict[str, Any],
    *,
    kind: str,
    node: str,
    restarts: int,
    env: dict[str, str],
    volumes: dict[str, Volume],
    sandbox_id: str | None,
    logs: dict[str, Any] = LOG_CONFIG,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(docker name, create_container kwargs, create_host_config kwargs) for one container (its
    json-file log kept as ``logs`` says)."""
    spec = pod.get("spec", {})
    command = [expand(str(x), env) for x in c.get("command") or []] or None
    args = [expand(str(x), env) for x in c.get("args") or []]
    host, user = _security(pod, c)
    host.update(_resources(c))
    host.update(_mounts(pod, c, volumes))
    host["restart_policy"] = {"Name": "no"}
    host["log_config"] = logs
    if host_network(pod):
        host["network_mode"] = "host"
        host["ipc_mode"] = "host" if spec.get("hostIPC") else "private"
    elif sandbox_id:
        host["network_mode"] = f"container:{sandbox_id}"
        host["ipc_mode"] = f"container:{sandbox_id}"
    if spec.get("hostPID"):
        host["pid_mode"] = "host"
    config: dict[str, Any] = {
        "image": c["image"],
        "entrypoint": command,
        "command": args or ([] if command else None),
        "environment": [f"{k}={v}" for k, v in env.items()],
        "labels": labels.for_container(node, pod, c["name"], kind, restarts, labels.spec_hash(c)),
        "working_dir": c.get("workingDir") or None,
        "user": user,
        "tty": bool(c.get("tty")),
        "stdin_open": bool(c.get("stdin")),
    }
    if host_network(pod):
        config["hostname"] = None
    return labels.docker_name(pod, c["name"], restarts), config, host
