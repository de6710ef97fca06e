"""Starting one container of a pod, kubelet's way: image per pull policy, then docker create (after
removing all instances but the previous one, kept for lastState), then start, then record the instance.

A failure is not raised but said in the worker's ``waiting`` with kubelet's reason (ImagePullBackOff,
CreateContainerConfigError, CreateContainerError, RunContainerError), and back-off is counted where a
restart was due; only Unreachable (the engine gone) propagates. ``precreate`` creates the first
containers of a fresh pod while its sandbox starts.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from runtime.edge.pods import envs, images, labels, observe, translate
from runtime.edge.pods.refs import RefMissing
from runtime.errors import KedgeError, Unreachable

if TYPE_CHECKING:
    from runtime.edge.pods.worker import PodWorker


async def precreate(w: PodWorker, sandbox_id: str) -> None:
    """Create (not start) the first init container, else every app container, of a fresh pod —
    best effort: what cannot be created yet without a pull or the pod IP is left to `start`."""
    inits = w.spec.get("initContainers") or []
    first = [(c, "init") for c in inits[:1]] or [(c, "app") for c in w.spec.get("containers") or []]
    if any(w.history.get(c["name"]) for c in [*inits, *(w.spec.get("containers") or [])]):
        return

    async def one(c: dict[str, Any], kind: str) -> None:
        if envs.needs_pod_ip(c) or w.in_backoff(f"pull:{c['name']}"):
            return
        try:
            cid = await create(w, c, kind, 0, sandbox_id, pull=False)
        except (images.ImageError, RefMissing, KedgeError):
            return
        await record(w, c["name"], cid, 0)

    await asyncio.gather(*(one(c, kind) for c, kind in first))


async def start(w: PodWorker, c: dict[str, Any], kind: str, restarts: int, backoff: bool = False) -> None:
    """Create (unless created for this very start) and start container `c`; on failure say why in
    `w.waiting` as kubelet does, and count back-off where restarts are due."""
    name, docker = c["name"], w.ctx.docker
    pull_key = f"pull:{name}"
    init = kind == "init"
    if w.in_backoff(pull_key):
        msg = w.waiting.get(name, ("", f'Back-off pulling image "{c["image"]}"'))[1]
        w.waiting[name] = ("ImagePullBackOff", msg)
        w.event(name, "Normal", "BackOff", f'Back-off pulling image "{c["image"]}"', init)
        w.event(name, "Warning", "Failed", "Error: ImagePullBackOff", init)
        return
    sb = w.current(labels.SANDBOX_NAME)
    sb_id = sb["Id"] if sb else None
    cur = w.current(name)
    try:
        if cur is not None and _startable(w, cur, c, restarts, sb_id):
            cid = str(cur["Id"])  # created while the sandbox started (or before a runtime restart)
            w.event(name, "Normal", "Created", f"Created container {name}", init)
        else:
            cid = await create(w, c, kind, restarts, sb_id)
    except images.ImageError as exc:
        w.waiting[name] = (exc.reason, exc.message)
        w.bump(pull_key)
        return
    except Unreachable:
        raise
    except (RefMissing, KedgeError) as exc:
        w.backoff.pop(pull_key, None)
        config = isinstance(exc, RefMissing)
        w.waiting[name] = (
            "CreateContainerConfigError" if config else "CreateContainerError",
            str(exc),
        )
        w.event(name, "Warning", "Failed", f"Error: {exc}", init)
        w.stale |= not config
        if backoff and not config:
            w.bump(name)
        return
    w.backoff.pop(pull_key, None)
    w.changed = True
    try:
        await w.slot.take()
        await w.slot.call(docker.start(cid))
    except Unreachable:
        raise
    except KedgeError as exc:
        w.waiting[name] = ("RunContainerError", str(exc))
        w.event(name, "Warning", "Failed", f"Error: {exc}", init)
        w.stale = True
        if backoff:
            w.bump(name)
        return
    w.waiting.pop(name, None)
    w.event(name, "Normal", "Started", f"Started container {name}", init)
    if backoff:
        w.bump(name)
    await record(w, name, cid, restarts)


def _startable(
    w: PodWorker, cur: dict[str, Any], c: dict[str, Any], restarts: int, sb_id: str | None
) -> bool:
    """`cur` was created for exactly this start: same restart count, spec and sandbox."""
    host = cur["HostConfig"]
    return (
        observe.never_started(cur)
        and observe.restarts(cur) == restarts
        and (cur["Config"].get("Labels") or {}).get(labels.HASH) == labels.spec_hash(c)
        and (translate.host_network(w.pod) or host.get("NetworkMode") == f"container:{sb_id}")
    )


async def create(
    w: PodWorker, c: dict[str, Any], kind: str, restarts: int, sb_id: str | None, pull: bool = True
) -> str:
    """docker create (image per pull policy, env, volumes), after removing the instances but the
    previous one (lastState). Raises ImageError, RefMissing, KedgeError."""
    await images.ensure(
        w.ctx.docker,
        w.ctx.refs,
        w.pod,
        c,
        pull=pull,
        pulling=w.slot.away,
        abandon=w.abandon,
        event=(lambda t, r, m: w.event(c["name"], t, r, m, kind == "init")) if pull else None,
    )
    await w.slot.take()
    env = await envs.resolve(w.ctx.refs, w.pod, c, w.ctx.host_ip, w.pod_ip())
    dname, cfg, host = translate.container_config(
        w.pod,
        c,
        kind=kind,
        node=w.ctx.node,
        restarts=restarts,
        env=env,
        volumes=w.mounts or {},
        sandbox_id=sb_id,
        logs=w.ctx.logs,
    )
    old = w.history.get(c["name"], [])
    prev = [i for i in old if observe.restarts(i) < restarts][:1]
    w.changed = True
    for info in old:
        if info not in prev:
            await w.ctx.docker.remove(info["Id"])
    w.history[c["name"]] = prev
    cid = await w.slot.call(w.ctx.docker.create(dname, host_config=host, **cfg))
    if pull:  # a precreated container is announced by the start that uses it
        w.event(c["name"], "Normal", "Created", f"Created container {c['name']}", kind == "init")
    return str(cid)


async def record(w: PodWorker, name: str, cid: str, restarts: int) -> None:
    """Put the new instance `cid` in front of the previous one (the only other one kept)."""
    created = await w.ctx.docker.inspect(cid)
    if created is None:
        w.stale = True
        return
    prev = [i for i in w.history.get(name, []) if i["Id"] != cid and observe.restarts(i) < restarts]
    w.history[name] = [created, *prev[:1]]
