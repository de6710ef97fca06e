"""Pod volumes made real under the edge state dir (pods/<uid>/volumes/<name>) and bind-mounted.

configMap, secret, downwardAPI and projected volumes (incl. the `kube-api-access-*` one every pod
carries) are payloads written with atomic_dir, so refreshing them is a live update inside running
containers. emptyDir is a directory (or tmpfs for medium Memory), hostPath the host's path (a
CharDevice/BlockDevice hostPath becomes a docker device: the IoT case, usable without privileged).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.edge.pods import atomic_dir
from runtime.edge.pods.refs import RefMissing, RefResolver, field_value, resource_value, source_data


@dataclass
class Volume:
    kind: str  # bind | tmpfs | device
    host_path: str = ""
    read_only: bool = False


@dataclass
class TokenCache:
    """Service-account tokens per (volume, path): refreshed at 80 % of their lifetime, kept if offline."""

    tokens: dict[tuple[str, str], tuple[str, float, int]] = field(default_factory=dict)

    async def get(
        self, refs: RefResolver, pod: dict[str, Any], key: tuple[str, str], src: dict[str, Any], now: float
    ) -> str:
        cached = self.tokens.get(key)
        exp = int(src.get("expirationSeconds", 3607))
        if cached and now - cached[1] < 0.8 * cached[2]:
            return cached[0]
        meta, spec = pod["metadata"], pod.get("spec", {})
        aud = [src["audience"]] if src.get("audience") else None
        token = await refs.sa_token(
            meta.get("namespace", "default"), spec.get("serviceAccountName") or "default", pod, exp, aud
        )
        if token:
            self.tokens[key] = (token, now, exp)
            return token
        if cached:
            return cached[0]  # offline: the last token stays until the cloud answers again
        raise RefMissing(
            f"failed to fetch token for service account {spec.get('serviceAccountName') or 'default'}"
        )


def _mode(item: dict[str, Any], default: int) -> int:
    return int(item["mode"]) if item.get("mode") is not None else default


async def _keys(
    refs: RefResolver,
    ns: str,
    kind: str,
    name: str,
    items: list[dict[str, Any]] | None,
    optional: bool,
    mode: int,
) -> atomic_dir.Payload:
    data = await source_data(refs, ns, kind, name, optional)
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out: atomic_dir.Payload = {}
    for it in items:
        if it["key"] not in data:
            if optional:
                continue
            raise RefMissing(f'configmap/secret "{name}": key {it["key"]!r} not found')
        out[it["path"]] = (data[it["key"]], _mode(it, mode))
    return out


def _downward(
    pod: dict[str, Any], items: list[dict[str, Any]], mode: int, host_ip: str, pod_ip: str
) -> atomic_dir.Payload:
    out: atomic_dir.Payload = {}
    for it in items:
        if "fieldRef" in it:
            value = field_value(pod, it["fieldRef"]["fieldPath"], host_ip, pod_ip)
        else:
            r = it["resourceFieldRef"]
            value = resource_value(pod, r.get("containerName", ""), r["resource"], r.get("divisor"))
        out[it["path"]] = (value.encode(), _mode(it, mode))
    return out


async def payload_of(
    refs: RefResolver,
    pod: dict[str, Any],
    vol: dict[str, Any],
    tokens: TokenCache,
    host_ip: str,
    pod_ip: str,
    now: float,
) -> atomic_dir.Payload | None:
    """The files of a configMap/secret/downwardAPI/projected volume; None for other kinds."""
    ns = pod["metadata"].get("namespace", "default")
    for key, kind, name in (("configMap", "configmap", "name"), ("secret", "secret", "secretName")):
        if key in vol:
            v = vol[key]
            mode = int(v.get("defaultMode", 0o644))
            return await _keys(refs, ns, kind, v[name], v.get("items"), bool(v.get("optional")), mode)
    if "downwardAPI" in vol:
        v = vol["downwardAPI"]
        return _downward(pod, v.get("items") or [], int(v.get("defaultMode", 0o644)), host_ip, pod_ip)
    if "projected" in vol:
        v = vol["projected"]
        mode = int(v.get("defaultMode", 0o644))
        out: atomic_dir.Payload = {}
        for src in v.get("sources") or []:
            if "serviceAccountToken" in src:
                sat = src["serviceAccountToken"]
                token = await tokens.get(refs, pod, (vol["name"], sat["path"]), sat, now)
                out[sat["path"]] = (token.encode(), mode)
            elif "configMap" in src or "secret" in src:
                kind = "configmap" if "configMap" in src else "secret"
                s = src["configMap"] if kind == "configmap" else src["secret"]
                out.update(
                    await _keys(refs, ns, kind, s["name"], s.get("items"), bool(s.get("optional")), mode)
                )
            elif "downwardAPI" in src:
                out.update(_downward(pod, src["downwardAPI"].get("items") or [], mode, host_ip, pod_ip))
        return out
    return None


def _host_path(v: dict[str, Any]) -> Volume:
    path, typ = v["path"], v.get("type", "")
    p = Path(path)
    if typ == "DirectoryOrCreate":
        p.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif typ == "FileOrCreate" and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644)
    elif typ in ("Directory", "File", "Socket", "CharDevice", "BlockDevice") and not p.exists():
        raise RefMissing(f"hostPath type check failed: {path} does not exist")
    if typ in ("CharDevice", "BlockDevice"):
        return Volume("device", path)
    return Volume("bind", path)


async def materialise(
    refs: RefResolver,
    pod: dict[str, Any],
    root: Path,
    tokens: TokenCache,
    host_ip: str,
    pod_ip: str,
    now: float | None = None,
) -> tuple[dict[str, Volume], bool]:
    """Write every volume of `pod` under `root`; the mounts by volume name, and whether any file changed."""
    now = time.monotonic() if now is None else now
    fs_group = (pod.get("spec", {}).get("securityContext") or {}).get("fsGroup")
    gid = int(fs_group) if fs_group is not None else None
    out: dict[str, Volume] = {}
    changed = False
    for vol in pod.get("spec", {}).get("volumes") or []:
        name = vol["name"]
        target = root / name
        if "hostPath" in vol:
            out[name] = _host_path(vol["hostPath"])
        elif "emptyDir" in vol:
            if (vol["emptyDir"] or {}).get("medium") == "Memory":
                out[name] = Volume("tmpfs")
            else:
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o777)  # kubelet: world-writable so any runAsUser can use it
                if gid is not None:
                    os.chown(target, -1, gid)
                    os.chmod(target, 0o2777)  # setgid: new files inherit the fsGroup
                out[name] = Volume("bind", str(target))
        else:
            payload = await payload_of(refs, pod, vol, tokens, host_ip, pod_ip, now)
            if payload is None:
                raise RefMissing(f"volume {name!r}: unsupported volume type {sorted(set(vol) - {'name'})}")
            if gid is not None:  # group-readable for the fsGroup, like kubelet's SetVolumeOwnership
                payload = {k: (v, m | 0o040) for k, (v, m) in payload.items()}
            changed |= atomic_dir.write(target, payload, gid)
            out[name] = Volume("bind", str(target), read_only=True)
    return out, changed


async def remove(root: Path) -> None:
    """Remove a pod's volume folder on a thread: gigabytes of emptyDir take seconds to unlink, and the
    loop keeps the cloud link's keepalives and every other pod going meanwhile."""
    await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
