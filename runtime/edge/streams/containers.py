"""Which Docker container a stream session means: the pod's container by the pod manager's labels
(runtime/edge/pods/labels.py), the current instance or — ``previous`` — the one before it, which the
pod manager keeps for ``lastState`` (pods/starting.py). Errors read as kubelet's (HTTP 400/404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.edge.pods import labels
from runtime.edge.pods.adapter import DockerAdapter
from runtime.protocol.tunnel import OpenRequest


@dataclass
class SessionError(Exception):
    """Refused before anything was served: the HTTP status and message the client gets."""

    code: int
    message: str

    def __str__(self) -> str:
        return self.message


def _restarts(c: dict[str, Any]) -> int:
    try:
        return int((c.get("Labels") or {}).get(labels.RESTARTS, "0"))
    except ValueError:
        return 0


async def instances(
    docker: DockerAdapter, node: str, req: OpenRequest, kinds: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The pod's containers named ``req.container`` (every name when empty) of ``kinds``, newest first."""
    want = {labels.NODE: node, labels.POD_NS: req.namespace, labels.POD_NAME: req.pod}
    if req.container:
        want[labels.CONTAINER] = req.container
    if req.uid:
        want[labels.POD_UID] = req.uid
    filters = {"label": [f"{k}={v}" for k, v in {labels.MANAGED: "true", **want}.items()]}
    found = await docker.call(lambda api: api.containers(all=True, filters=filters))
    found = [c for c in found if (c.get("Labels") or {}).get(labels.KIND) in kinds]
    return sorted(found, key=_restarts, reverse=True)


async def container_for(docker: DockerAdapter, node: str, req: OpenRequest, *, previous: bool = False,
                        running: bool = False, init_ok: bool = True) -> dict[str, Any]:  # fmt: skip
    """The container a session serves; SessionError as kubelet words it when there is none."""
    kinds = ("app", "init") if init_ok else ("app",)
    found = await instances(docker, node, req, kinds)
    where = f'container "{req.container}" in pod "{req.pod}"'
    if previous:
        if len(found) < 2:
            raise SessionError(400, f"previous terminated {where} not found")
        return found[1]
    if not found:
        raise SessionError(400, f"{where} is waiting to start: ContainerCreating")
    if running and found[0].get("State") != "running":
        raise SessionError(400, f"{where} is not running (state: {found[0].get('State')})")
    return found[0]


async def sandbox_for(docker: DockerAdapter, node: str, req: OpenRequest) -> dict[str, Any]:
    """The pod's sandbox (its network namespace) as ``docker inspect`` describes it."""
    sandboxes = await instances(
        docker, node, OpenRequest(req.sid, req.kind, req.namespace, req.pod, req.uid), ("sandbox",)
    )
    running = [s for s in sandboxes if s.get("State") == "running"]
    if not running:
        raise SessionError(400, f'pod "{req.pod}" has no running sandbox')
    info = await docker.inspect(running[0]["Id"])
    if info is None:
        raise SessionError(400, f'pod "{req.pod}" has no running sandbox')
    return info
