"""Graceful stop, kubelet's way: preStop bounded by the grace period, then SIGTERM, SIGKILL at its end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runtime.edge.pods import observe
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.probes import run_handler
from runtime.errors import KedgeError

log = logging.getLogger(__name__)


def grace_period(pod: dict[str, Any], grace: int | None) -> int:
    """The delete's grace, else the pod's deletionGracePeriodSeconds, else its termination grace."""
    if grace is not None:
        return max(0, int(grace))
    meta = pod.get("metadata", {})
    if meta.get("deletionGracePeriodSeconds") is not None:
        return int(meta["deletionGracePeriodSeconds"])
    return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


async def stop(
    docker: DockerAdapter,
    clock: Callable[[], float],
    info: dict[str, Any],
    c: dict[str, Any] | None,
    grace: int,
    pod_ip: str,
    hook_failed: Callable[[], None] | None = None,
) -> None:
    """Stop the container `info` (of spec `c`) within `grace` seconds, its preStop hook included;
    `hook_failed()` hears a preStop hook that failed (kubelet's FailedPreStopHook event)."""
    start = clock()
    hook = ((c or {}).get("lifecycle") or {}).get("preStop")
    if hook and observe.running(info):
        if not await run_handler(docker, info["Id"], c or {}, hook, pod_ip, max(grace, 1)) and hook_failed:
            hook_failed()
    left = max(0, round(grace - (clock() - start)))
    if observe.running(info):
        try:
            await docker.stop(info["Id"], grace=left)
        except KedgeError as exc:
            log.warning("stopping %s: %s", info["Id"][:12], exc)
