"""Images per imagePullPolicy, with imagePullSecrets as registry auth.

A missing or unpullable image is an `ImageError` whose reason becomes the container's waiting reason
(ErrImagePull, then ImagePullBackOff; ErrImageNeverPull) — never an exception that escapes the pod.
Edge deviation from kubelet, on purpose: with policy Always, a failed pull of an image that is already
present falls back to the local copy (an offline edge must keep restarting its pods).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.refs import RefResolver, secret_data
from runtime.errors import KedgeError, Unreachable

log = logging.getLogger(__name__)


class ImageError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def pull_policy(c: dict[str, Any]) -> str:
    if c.get("imagePullPolicy"):
        return str(c["imagePullPolicy"])
    last = c["image"].rsplit("/", 1)[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


async def auth_for(refs: RefResolver, pod: dict[str, Any], image: str) -> dict[str, str] | None:
    reg = registry_of(image)
    ns = pod["metadata"].get("namespace", "default")
    for ref in pod.get("spec", {}).get("imagePullSecrets") or []:
        secret = await refs.secret(ns, ref["name"])
        if not secret:
            continue
        data = secret_data(secret)
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        cfg = json.loads(raw)
        auths = cfg.get("auths", cfg)
        for key, entry in auths.items():
            host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
            if host == reg or (reg == "docker.io" and "docker.io" in host):
                user, pw = entry.get("username"), entry.get("password")
                if not user and entry.get("auth"):
                    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                return {"username": user or "", "password": pw or "", "serveraddress": key}
    return None


async def _pull(
    docker: DockerAdapter, image: str, auth: dict[str, str] | None, abandon: asyncio.Event | None
) -> None:
    pull = asyncio.ensure_future(docker.pull(image, auth))
    gone = asyncio.ensure_future(abandon.wait() if abandon is not None else asyncio.Event().wait())
    try:
        done, _ = await asyncio.wait({pull, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        pull.cancel()
        raise
    finally:
        gone.cancel()
    if pull not in done:  # abandoned: its thread ends when the engine gives up on the registry
        pull.cancel()
        raise ImageError("ErrImagePull", f'pull of "{image}" abandoned: the pod is being deleted')
    pull.result()


async def ensure(
    docker: DockerAdapter,
    refs: RefResolver,
    pod: dict[str, Any],
    c: dict[str, Any],
    pull: bool = True,
    pulling: Callable[[], None] | None = None,
    abandon: asyncio.Event | None = None,
    event: Callable[[str, str, str], None] | None = None,
) -> None:
    """The image per the pull policy; `pull=False` raises ImageError where a pull would be needed.
    `pulling()` is called right before a pull (the pod gives up its start slot: slots.py); once
    `abandon` is set (the pod is being deleted) a pull still under way is no longer waited for.
    `event(type, reason, message)` hears kubelet's Pulling / Pulled / Failed."""
    image, policy = c["image"], pull_policy(c)
    say = event or (lambda _t, _r, _m: None)
    present = await docker.image(image) is not None
    if policy == "Never":
        if not present:
            say(
                "Warning",
                "ErrImageNeverPull",
                f'Container image "{image}" is not present with pull policy of Never',
            )
            raise ImageError(
                "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
            )
        return
    if policy == "IfNotPresent" and present:
        if pull:  # a precreate (pull=False) says nothing: the start that uses the container does
            say("Normal", "Pulled", f'Container image "{image}" already present on machine')
        return
    if not pull:
        raise ImageError("ErrImagePull", f'image "{image}" needs a pull')
    if pulling is not None:
        pulling()
    say("Normal", "Pulling", f'Pulling image "{image}"')
    began = time.monotonic()
    try:
        await _pull(docker, image, await auth_for(refs, pod, image), abandon)
    except Unreachable:
        raise
    except KedgeError as exc:
        if present:
            log.warning("pull of %s failed (%s); using the local image", image, exc)
            return
        say("Warning", "Failed", f'Failed to pull image "{image}": {exc}')
        say("Warning", "Failed", "Error: ErrImagePull")
        raise ImageError("ErrImagePull", f'failed to pull image "{image}": {exc}') from exc
    took = time.monotonic() - began
    if event is not None:  # kubelet names the size too: one inspect, only when someone listens
        size = ((await docker.image(image)) or {}).get("Size", 0)
        done = f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting).'
        say("Normal", "Pulled", f"{done} Image size: {size} bytes.")
