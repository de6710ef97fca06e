"""Tunnel ports: one per cloud replica, claimed in the ConfigMap ``tunnelport`` of the cloud's namespace.

KubeEdge's shape, so its own iptables-manager reads kedge's claims too: the annotation
``tunnelportrecord.kubeedge.io`` holds ``{"ipTunnelPort": {address: port}, "port": {"port": true}}``
(cloudcore negotiates from 10351 the same way). kedge adds ``kedge.io/stream-ports``,
``{address: stream port}``: where DNAT sends each tunnel port (KubeEdge's manager takes one stream port
for all as a flag), and ``kedge.io/tunnel-replicas``, ``{address: replica identity}``. A claim is keyed
by the replica's address and idempotent: the same address gets the same port back, a new one the
lowest free port from the start. A claiming replica drops the claims of kedge replicas that are no
longer live (their replica Lease expired: a pod that died and came back under another address), as
KubeEdge's iptables-manager drops a deleted cloudcore pod's. ``release`` (`kedge reset cloud`)
removes the address's claim. Writes are resourceVersion-conditional and retried on conflict, so two
replicas starting at once never get the same port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeConflict, KubeNotFound
from runtime.kube.resources import CONFIGMAPS

CONFIGMAP = "tunnelport"
ANN_RECORD = "tunnelportrecord.kubeedge.io"
ANN_STREAM_PORTS = "kedge.io/stream-ports"
ANN_REPLICAS = "kedge.io/tunnel-replicas"
FIRST_PORT = 10351
ATTEMPTS = 8


@dataclass
class Record:
    """The claims: tunnel port and stream port per replica address."""

    tunnel: dict[str, int] = field(default_factory=dict)
    stream: dict[str, int] = field(default_factory=dict)
    replicas: dict[str, str] = field(default_factory=dict)  # the kedge replica behind each address

    @classmethod
    def of(cls, cm: dict[str, Any] | None) -> Record:
        ann = ((cm or {}).get("metadata") or {}).get("annotations") or {}
        try:
            raw = json.loads(ann.get(ANN_RECORD) or "{}")
            streams = json.loads(ann.get(ANN_STREAM_PORTS) or "{}")
            tunnel = {str(k): int(v) for k, v in (raw.get("ipTunnelPort") or {}).items()}
            stream = {str(k): int(v) for k, v in streams.items()}
            replicas = {str(k): str(v) for k, v in json.loads(ann.get(ANN_REPLICAS) or "{}").items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise KedgeError(
                f"ConfigMap {CONFIGMAP}: unreadable tunnel port record: {exc}",
                hint=f"fix or delete the ConfigMap's {ANN_RECORD} annotation",
            ) from exc
        return cls(tunnel, stream, replicas)

    def annotations(self) -> dict[str, str]:
        ports = {str(p): True for p in sorted(set(self.tunnel.values()))}
        record = {"ipTunnelPort": dict(sorted(self.tunnel.items())), "port": ports}
        return {
            ANN_RECORD: json.dumps(record, separators=(",", ":")),
            ANN_STREAM_PORTS: json.dumps(dict(sorted(self.stream.items())), separators=(",", ":")),
            ANN_REPLICAS: json.dumps(dict(sorted(self.replicas.items())), separators=(",", ":")),
        }

    def drop(self, address: str) -> None:
        self.tunnel.pop(address, None)
        self.stream.pop(address, None)
        self.replicas.pop(address, None)

    def prune(self, keep: str, live: set[str]) -> list[str]:
        """Drop the claims of kedge replicas not in ``live`` (never ``keep``'s); the addresses dropped."""
        gone = [a for a, r in self.replicas.items() if a != keep and r not in live]
        for address in gone:
            self.drop(address)
        return gone

    def free_port(self, start: int) -> int:
        used = set(self.tunnel.values())
        port = start
        while port in used:
            port += 1
        if port > 65535:
            raise KedgeError(f"no free tunnel port from {start}")
        return port


def _body(namespace: str, record: Record, cm: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = dict((cm or {}).get("metadata") or {"name": CONFIGMAP, "namespace": namespace})
    meta["annotations"] = {**(meta.get("annotations") or {}), **record.annotations()}
    meta.setdefault("labels", {"app.kubernetes.io/part-of": "kedge"})
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


async def read(client: KubeClient, namespace: str) -> Record:
    try:
        return Record.of(await client.get(CONFIGMAPS, CONFIGMAP, namespace=namespace))
    except KubeNotFound:
        return Record()


async def claim(
    client: KubeClient,
    namespace: str,
    address: str,
    stream_port: int,
    start: int = FIRST_PORT,
    *,
    replica: str = "",
    live: set[str] | None = None,
) -> int:
    """This replica's tunnel port (the one it holds, else the lowest free one from ``start``), its
    stream port and identity recorded beside it; with ``live`` (the replicas whose Lease is current)
    the claims of kedge replicas outside it are dropped first."""
    for _ in range(ATTEMPTS):
        try:
            cm: dict[str, Any] | None = await client.get(CONFIGMAPS, CONFIGMAP, namespace=namespace)
        except KubeNotFound:
            cm = None
        rec = Record.of(cm)
        pruned = rec.prune(address, live | {replica}) if live is not None else []
        port = rec.tunnel.get(address) or rec.free_port(start)
        held = rec.tunnel.get(address) == port and rec.stream.get(address) == stream_port
        if held and rec.replicas.get(address, "") == replica and not pruned:
            return port
        rec.tunnel[address], rec.stream[address] = port, stream_port
        if replica:
            rec.replicas[address] = replica
        try:
            if cm is None:
                await client.create(CONFIGMAPS, _body(namespace, rec, None), namespace=namespace)
            else:
                await client.replace(CONFIGMAPS, _body(namespace, rec, cm), namespace=namespace)
            return port
        except (KubeConflict, AlreadyExists):
            continue  # another replica wrote first: read again
    raise KedgeError(f"could not claim a tunnel port in ConfigMap {namespace}/{CONFIGMAP}: kept conflicting")


async def release(client: KubeClient, namespace: str, address: str) -> bool:
    """Drop ``address``'s claim; True when there was one."""
    for _ in range(ATTEMPTS):
        try:
            cm = await client.get(CONFIGMAPS, CONFIGMAP, namespace=namespace)
        except KubeNotFound:
            return False
        rec = Record.of(cm)
        if address not in rec.tunnel and address not in rec.stream:
            return False
        rec.drop(address)
        body = _body(namespace, rec, cm)
        try:
            await client.replace(CONFIGMAPS, body, namespace=namespace)
            return True
        except KubeConflict:
            continue
    raise KedgeError(f"could not release the tunnel port of {address}: ConfigMap kept conflicting")


async def release_kedge(client: KubeClient, namespace: str, *, dry_run: bool = False) -> str:
    """`kedge reset cloud`: every kedge replica's claim (those with a stream port recorded) released; the
    ConfigMap goes when no claim is left (a KubeEdge cloudcore's stays). What was done, as a word."""
    for _ in range(ATTEMPTS):
        try:
            cm = await client.get(CONFIGMAPS, CONFIGMAP, namespace=namespace)
        except KubeNotFound:
            return "not found"
        rec = Record.of(cm)
        mine = set(rec.stream)
        rest = Record({a: p for a, p in rec.tunnel.items() if a not in mine})
        if dry_run:
            return "would delete" if not rest.tunnel else f"would release {len(mine)} claim(s)"
        try:
            if not rest.tunnel:
                await client.delete(CONFIGMAPS, CONFIGMAP, namespace=namespace)
                return "deleted"
            await client.replace(CONFIGMAPS, _body(namespace, rest, cm), namespace=namespace)
            return f"released {len(mine)} claim(s), kept {len(rest.tunnel)}"
        except KubeNotFound:
            return "not found"
        except KubeConflict:
            continue
    raise KedgeError(
        f"could not release the tunnel ports: ConfigMap {namespace}/{CONFIGMAP} kept conflicting"
    )
