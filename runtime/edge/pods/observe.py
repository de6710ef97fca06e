"""docker inspect → status observations; the only place that reads docker's container JSON shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime.edge.pods import labels
from runtime.edge.pods.status import ContainerObs, Terminated

_ZERO = "0001-01-01T00:00:00Z"


def ts(docker_time: str | None) -> str:
    """Docker's RFC 3339 nanosecond time to Kubernetes' second precision."""
    if not docker_time or docker_time.startswith("0001-"):
        return _ZERO if docker_time else ""
    return docker_time.split(".")[0].rstrip("Z") + "Z"


def running(info: dict[str, Any]) -> bool:
    return bool(info["State"].get("Running")) and not info["State"].get("Restarting")


def restarts(info: dict[str, Any]) -> int:
    try:
        return int((info["Config"].get("Labels") or {}).get(labels.RESTARTS, "0"))
    except ValueError:
        return 0


def ran_for(info: dict[str, Any]) -> float:
    """Seconds between a stopped container's start and finish (0 when unknown)."""
    st = info["State"]
    try:
        start = dt.datetime.fromisoformat(ts(st.get("StartedAt")).replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(ts(st.get("FinishedAt")).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (end - start).total_seconds())


def terminated(info: dict[str, Any]) -> Terminated:
    st = info["State"]
    code = int(st.get("ExitCode", 0))
    reason = "OOMKilled" if st.get("OOMKilled") else ("Completed" if code == 0 else "Error")
    return Terminated(
        exit_code=code,
        reason=reason,
        started_at=ts(st.get("StartedAt")),
        finished_at=ts(st.get("FinishedAt")),
        container_id=f"docker://{info['Id']}",
        message=str(st.get("Error") or ""),
    )


def container(name: str, image: str, history: list[dict[str, Any]]) -> ContainerObs:
    """`history`: this container's docker instances, newest first (at most current + previous)."""
    obs = ContainerObs(name=name, image=image)
    if not history:
        return obs
    cur = history[0]
    obs.container_id = f"docker://{cur['Id']}"
    obs.image_id = str(cur.get("Image", ""))
    obs.restart_count = restarts(cur)
    if running(cur):
        obs.running_since = ts(cur["State"].get("StartedAt"))
    else:
        obs.terminated = terminated(cur)
    if len(history) > 1:
        obs.last = terminated(history[1])
    return obs


def sort_history(infos: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Group a pod's containers by container name, newest (highest restart count) first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for info in infos:
        name = (info["Config"].get("Labels") or {}).get(labels.CONTAINER, "")
        out.setdefault(name, []).append(info)
    for hist in out.values():
        hist.sort(key=lambda i: (restarts(i), i.get("Created", "")), reverse=True)
    return out
