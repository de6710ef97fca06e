"""Create-or-update for `kedge init` (and reset's undo): server-side apply, reported like kubectl.

Why server-side apply: re-running init converges without read-modify-write races, and the field
manager "kedge" owns exactly the fields kedge set (a user's extra labels survive). The per-object
verdict mirrors `kubectl apply`: "created" (did not exist), "unchanged" (the server kept the same
resourceVersion), else "configured". A CRD in the batch is waited for (Established / served)
before later objects, so one manifest can carry a CRD and its custom resources.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CRDS, Res, res_from_crd
from runtime.kube.wire import Propagation

Action = Literal["created", "configured", "unchanged", "deleted", "not found", "failed"]
_VOLATILE_META = ("managedFields", "resourceVersion", "generation")


@dataclass
class ApplyResult:
    kind: str
    name: str
    namespace: str | None
    action: Action
    object: dict[str, Any] | None = None
    error: KedgeError | None = field(default=None, repr=False)

    def describe(self) -> str:
        """kubectl's line: `deployment.apps/cloudcore configured`."""
        return f"{self.kind.lower()}/{self.name} {self.action}"


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    return {**obj, "metadata": meta}


async def _current(client: KubeClient, res: Res, obj: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return await client.get(res, obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
    except KubeNotFound:
        return None


async def wait_crd_served(client: KubeClient, crd: dict[str, Any], within: float = 30.0) -> list[Res]:
    """Wait until a CRD is Established and its resources answer a list (a real server takes a moment)."""
    resources = res_from_crd(crd)
    deadline = time.monotonic() + within
    name = crd["metadata"]["name"]
    while True:
        try:
            current = await client.get(CRDS, name)
            conds = (current.get("status") or {}).get("conditions") or []
            established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)
            if established:
                for res in resources:
                    await client.list(res, limit=1)
                for res in resources:
                    client.remember(res)
                return resources
        except KubeNotFound:
            pass
        if time.monotonic() > deadline:
            raise KedgeError(
                f"CRD {name} not served by {client.server} after {within:.0f}s",
                hint="check the API server's log; the CRD may be invalid",
            )
        await asyncio.sleep(0.1)


async def apply_objects(
    client: KubeClient,
    objs: list[dict[str, Any]],
    *,
    field_manager: str = "kedge",
    dry_run: bool = False,
    force: bool = True,
) -> list[ApplyResult]:
    """Apply in order; stops at the first failure (later objects usually depend on earlier ones),
    whose error names the object and its apiVersion (same error type, so the same exit code)."""
    results: list[ApplyResult] = []
    for obj in objs:
        try:
            res = await client.resolve(obj["apiVersion"], obj["kind"])
            before = await _current(client, res, obj)
            after = await client.apply(
                obj, res=res, force=force, dry_run=dry_run, field_manager=field_manager
            )
        except KedgeError as exc:
            raise _naming(exc, obj) from None
        action: Action
        if before is None:
            action = "created"
        elif before["metadata"].get("resourceVersion") != after["metadata"].get("resourceVersion"):
            action = "configured"
        elif dry_run and _strip(before) != _strip(after):
            action = "configured"  # a dry run never bumps resourceVersion; compare content instead
        else:
            action = "unchanged"
        meta = after.get("metadata") or {}
        results.append(ApplyResult(res.kind, meta.get("name", ""), meta.get("namespace"), action, after))
        if res == CRDS and not dry_run:
            await wait_crd_served(client, after)
    return results


def _naming(exc: KedgeError, obj: dict[str, Any]) -> KedgeError:
    """`exc` with the object prefixed: `applying FlowSchema kedge-cloud-node-writes
    (flowcontrol.apiserver.k8s.io/v1): <the server's words>`."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    exc.message = (
        f"applying {obj.get('kind')} {where}{meta.get('name')} ({obj.get('apiVersion')}): {exc.message}"
    )
    exc.args = (exc.message,)
    if isinstance(exc, KubeNotFound) and not exc.hint:
        exc.hint = f"the server may not serve {obj.get('apiVersion')}: see `kubectl api-versions`"
    return exc


async def delete_objects(
    client: KubeClient,
    objs: list[dict[str, Any]],
    *,
    propagation: Propagation = "Background",
    dry_run: bool = False,
) -> list[ApplyResult]:
    """Delete in reverse order (custom resources before their CRD); best effort, one result each."""
    results: list[ApplyResult] = []
    for obj in reversed(objs):
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace")
        try:
            res = await client.resolve(obj["apiVersion"], obj["kind"])
            await client.delete(res, name, namespace=namespace, propagation=propagation, dry_run=dry_run)
            results.append(ApplyResult(res.kind, name, namespace, "deleted"))
        except KubeNotFound:
            results.append(ApplyResult(obj["kind"], name, namespace, "not found"))
        except KedgeError as exc:
            results.append(ApplyResult(obj["kind"], name, namespace, "failed", error=exc))
    return results
