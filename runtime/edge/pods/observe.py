"""docker inspect → status observations; the only place that reads docker's container JSON shape."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from runtime.edge.pods import labels, translate
from runtime.edge.pods.status import ContainerObs, PodObs, Terminated

if TYPE_CHECKING:
    from runtime.edge.pods.worker import PodWorker

_ZERO = "0001-01-01T00:00:00Z"


def ts(docker_time: str | None) -> str:
    """Docker's RFC 3339 nanosecond time to Kubernetes' second precision."""
    if not docker_time or docker_time.startswith("0001-"):
        return _ZERO if docker_time else ""
    return docker_time.split(".")[0].rstrip("Z") + "Z"


def running(info: dict[str, Any]) -> bool:
    return bool(info["State"].get("Running")) and not info["State"].get("Restarting")


def never_started(info: dict[str, Any]) -> bool:
    """Created and not started yet (created while its sandbox started, or the runtime died before the
    start): it is started as it is, not restarted."""
    return info["State"].get("Status") == "created"


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
    if history and never_started(history[0]):  # waiting (ContainerCreating); the instance before is lastState
        if len(history) > 1:
            obs.last, obs.restart_count = terminated(history[1]), restarts(history[1])
        return obs
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


def pod(w: PodWorker) -> PodObs:
    """What the status of `w`'s pod is built from: its containers, kedge's waiting reasons, probes."""
    obs = PodObs(
        host_ip=w.ctx.host_ip,
        pod_ip=w.pod_ip() or None,
        start_time=w.start_time or None,
        terminating=w.deleting,
    )
    sb = w.current(labels.SANDBOX_NAME)
    obs.sandbox_ready = (
        not w.deleting
        and w.mounts is not None
        and (translate.host_network(w.pod) or (sb is not None and running(sb)))
    )
    initializing = False
    for kind, key in (("init", "initContainers"), ("app", "containers")):
        for c in w.spec.get(key) or []:
            o = container(c["name"], c["image"], w.history.get(c["name"], []))
            if kind == "init" and not (o.terminated and o.terminated.exit_code == 0):
                initializing = True
            if kind == "app" and initializing and not o.container_id:
                o.waiting_reason = "PodInitializing"
            pod_wait = w.waiting.get("__mount__") or w.waiting.get("__sandbox__")
            wait = w.waiting.get(c["name"]) or (pod_wait if not o.container_id else None)
            if wait and o.running_since is None:
                o.waiting_reason, o.waiting_message = wait
                if o.terminated is not None:
                    o.last, o.terminated = o.terminated, None
            startup = w.probes.get((c["name"], "startup"))
            ready = w.probes.get((c["name"], "readiness"))
            cid = o.container_id.removeprefix("docker://")
            o.started = (
                o.running_since is not None
                and (startup is None or (startup.cid == cid and startup.result))
                and not (c.get("startupProbe") and startup is None)
            )
            if kind == "app":
                o.ready = o.started and (
                    ready.result and ready.cid == cid if ready else not c.get("readinessProbe")
                )
            else:  # kubelet reports a successfully completed init container as ready
                o.ready = o.terminated is not None and o.terminated.exit_code == 0
            (obs.init if kind == "init" else obs.containers).append(o)
    return obs
