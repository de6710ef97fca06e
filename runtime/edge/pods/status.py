"""Pod status as a pure function of (pod spec, what was observed, previous status, now).

No docker, no clock reads: the manager observes, this module decides — phase (kubelet's getPhase),
the five conditions in the order a real edgecore sends them (PodReadyToStartContainers, Initialized,
Ready, ContainersReady, PodScheduled), containerStatuses with the recorded keys, IPs, startTime and
qosClass. Transition times are carried over from `prev` while a condition's status is unchanged, so a
status that did not change compares equal and is not sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.quantity import parse_quantity


@dataclass
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    container_id: str = ""
    message: str = ""


@dataclass
class ContainerObs:
    """One container as kedge sees it: the current docker container (if any) plus kedge's own state."""

    name: str
    image: str
    container_id: str = ""  # docker://<id>
    image_id: str = ""
    running_since: str | None = None
    terminated: Terminated | None = None
    waiting_reason: str | None = None  # set when no container runs: ContainerCreating, CrashLoopBackOff…
    waiting_message: str | None = None
    last: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False


@dataclass
class PodObs:
    host_ip: str
    pod_ip: str | None = None
    sandbox_ready: bool = False
    start_time: str | None = None
    terminating: bool = False  # the pod is being deleted: a stopped pod's phase is terminal
    init: list[ContainerObs] = field(default_factory=list)
    containers: list[ContainerObs] = field(default_factory=list)


def _terminated(t: Terminated) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
    }
    if t.container_id:
        out["containerID"] = t.container_id
    if t.message:
        out["message"] = t.message
    return out


def _state(o: ContainerObs) -> dict[str, Any]:
    if o.running_since is not None:
        return {"running": {"startedAt": o.running_since}}
    if o.waiting_reason is None and o.terminated is not None:
        return {"terminated": _terminated(o.terminated)}
    waiting = {"reason": o.waiting_reason or "ContainerCreating"}
    if o.waiting_message:
        waiting["message"] = o.waiting_message
    return {"waiting": waiting}


def container_status(o: ContainerObs, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": o.image,
        "imageID": o.image_id,
        "lastState": {"terminated": _terminated(o.last)} if o.last else {},
        "name": o.name,
        "ready": o.ready,
        "restartCount": o.restart_count,
        "started": o.started,
        "state": _state(o),
    }
    if o.container_id:
        out["containerID"] = o.container_id
    mounts = []
    for m in spec.get("volumeMounts") or []:
        vm = {"mountPath": m["mountPath"], "name": m["name"]}
        if m.get("readOnly"):
            vm.update(readOnly=True, recursiveReadOnly="Disabled")
        mounts.append(vm)
    if mounts:
        out["volumeMounts"] = mounts
    return out


def qos_class(pod: dict[str, Any]) -> str:
    spec = pod.get("spec", {})
    cs = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    any_set, guaranteed = False, True
    for c in cs:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        any_set |= bool(lim or req)
        for r in ("cpu", "memory"):
            if r not in lim or parse_quantity(req.get(r, lim[r])) != parse_quantity(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def phase(pod: dict[str, Any], obs: PodObs) -> str:
    """kubelet's getPhase, over what kedge observed."""
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    for o in obs.init:
        if o.terminated and o.terminated.exit_code != 0 and o.running_since is None and policy == "Never":
            return "Failed"
    if any(not (o.terminated and o.terminated.exit_code == 0) for o in obs.init):
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for o in obs.containers:
        if o.running_since is not None:
            running += 1
        elif o.terminated is not None and o.waiting_reason is None:
            stopped += 1
            succeeded += o.terminated.exit_code == 0
        elif o.last is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if obs.terminating:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def _cond(
    typ: str,
    ok: bool,
    now: str,
    prev: dict[str, dict[str, Any]],
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = prev.get(typ)
    when = old["lastTransitionTime"] if old and old.get("status") == status else now
    out: dict[str, Any] = {"lastProbeTime": None, "lastTransitionTime": when, "status": status, "type": typ}
    if not ok and reason:
        out["reason"] = reason
        if message:
            out["message"] = message
    return out


def build(pod: dict[str, Any], obs: PodObs, prev: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """The full pod status kedge reports (the edge runtime turns it into a podpatch)."""
    spec = pod.get("spec", {})
    old = {c["type"]: c for c in (prev or {}).get("conditions") or []}
    ph = phase(pod, obs)
    specs = {c["name"]: c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
    not_init = [o.name for o in obs.init if not (o.terminated and o.terminated.exit_code == 0)]
    unready = [o.name for o in obs.containers if not o.ready]
    done = ph in ("Succeeded", "Failed")
    done_reason = "PodCompleted" if ph == "Succeeded" else "PodFailed"
    ready_reason = done_reason if done else "ContainersNotReady"
    ready_msg = None if done else f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _cond("PodReadyToStartContainers", obs.sandbox_ready and not done, now, old),
        _cond(
            "Initialized",
            not not_init,
            now,
            old,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(not_init)}]",
        ),
        _cond("Ready", not unready and not done, now, old, ready_reason, ready_msg),
        _cond("ContainersReady", not unready and not done, now, old, ready_reason, ready_msg),
        _cond("PodScheduled", True, now, old),
    ]
    status: dict[str, Any] = {
        "phase": ph,
        "conditions": conditions,
        "hostIP": obs.host_ip,
        "hostIPs": [{"ip": obs.host_ip}],
        "startTime": obs.start_time or now,
        "qosClass": qos_class(pod),
        "containerStatuses": [container_status(o, specs.get(o.name, {})) for o in obs.containers],
    }
    if obs.init:
        status["initContainerStatuses"] = [container_status(o, specs.get(o.name, {})) for o in obs.init]
    if obs.pod_ip:
        status["podIP"] = obs.pod_ip
        status["podIPs"] = [{"ip": obs.pod_ip}]
    return status


def runtime_down(status: dict[str, Any], now: str) -> dict[str, Any]:
    """The last status with Ready and ContainersReady False and no container ready: what is known
    while the container runtime does not answer (as the node lifecycle controller marks the pods of
    a NotReady node); phase and container states stay as last seen."""
    message = "container runtime is down"  # the reason (it varies) is in the node's Ready condition
    conds = []
    for c in status.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady"):
            when = now if c.get("status") == "True" else c.get("lastTransitionTime", now)
            c = {**c, "status": "False", "lastTransitionTime": when, "reason": "ContainersNotReady"}
            c["message"] = message
        conds.append(c)
    out = {**status, "conditions": conds}
    for key in ("containerStatuses", "initContainerStatuses"):
        if key in status:
            out[key] = [{**cs, "ready": False} for cs in status[key]]
    return out


def display_status(status: dict[str, Any], *, deleting: bool) -> str:
    """The STATUS column of `kubectl get pods` (kubectl's printPod): the phase, replaced by the reason
    a container waits or terminated with (ImagePullBackOff, CrashLoopBackOff, Completed, Error…), an
    init container's as `Init:<reason>`, and `Terminating` while the pod is being deleted."""
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    inits = status.get("initContainerStatuses") or []
    for i, c in enumerate(inits):
        state = c.get("state") or {}
        done = state.get("terminated") or {}
        if done and done.get("exitCode") == 0:
            continue
        if done:
            reason = "Init:" + (done.get("reason") or f"ExitCode:{done.get('exitCode')}")
        elif (state.get("waiting") or {}).get("reason", "PodInitializing") != "PodInitializing":
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(inits)}"
        break
    else:
        running = False
        for c in reversed(status.get("containerStatuses") or []):
            state = c.get("state") or {}
            waiting, done = state.get("waiting") or {}, state.get("terminated") or {}
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif done:
                reason = done.get("reason") or f"ExitCode:{done.get('exitCode')}"
            elif "running" in state and c.get("ready"):
                running = True
        if reason == "Completed" and running:
            reason = "Running"
    return "Terminating" if deleting else reason
