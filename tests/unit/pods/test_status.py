"""Pod status is a pure function; its shape matches what a real edgecore sent (the recording)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.edge.pods import status
from runtime.edge.pods.status import ContainerObs, PodObs, Terminated

CAPTURE = Path(__file__).parents[1] / "protocol" / "data" / "capture.jsonl"
CONDITION_ORDER = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
T0, T1 = "2026-11-28T09:33:06Z", "2026-11-28T09:33:07Z"


def frames() -> dict[int, dict[str, Any]]:
    out = {}
    for line in CAPTURE.read_text().splitlines():
        f = json.loads(line)
        out[f["seq"]] = f["msg"]
    return out


def recorded_pod() -> dict[str, Any]:
    return frames()[29]["content"]  # insert default/pod/demo-cm-pod (hostNetwork, one container "bb")


def patch(seq: int) -> dict[str, Any]:
    return json.loads(frames()[seq]["content"])["status"]


def obs(**c: Any) -> PodObs:
    return PodObs(
        host_ip="192.0.2.2",
        pod_ip="192.0.2.2",
        sandbox_ready=c.pop("sandbox", True),
        start_time=T0,
        terminating=c.pop("terminating", False),
        containers=[ContainerObs(name="bb", image="registry.local/busybox:1.36", **c)],
    )


def test_first_status_matches_recorded_creating_status() -> None:
    want = patch(31)
    got = status.build(recorded_pod(), obs(sandbox=False), None, T0)
    assert (
        [c["type"] for c in got["conditions"]] == CONDITION_ORDER == [c["type"] for c in want["conditions"]]
    )
    assert got["conditions"] == want["conditions"]
    assert got["containerStatuses"] == want["containerStatuses"]
    for key in ("hostIP", "hostIPs", "podIP", "podIPs", "startTime"):
        assert got[key] == want[key], key
    assert got["phase"] == "Pending" and got["qosClass"] == "BestEffort"


def test_running_status_matches_recorded_patch() -> None:
    first = status.build(recorded_pod(), obs(sandbox=False), None, T0)
    running = obs(
        container_id="containerd://a047ba395fccb57fa5507706552245c778a1d8732622765f1e5b9f9bda3acb8a",
        image_id="sha256:657208233674e10a5d0cb0b588be4fef2a822897357e36e3cf2f153703bb2afc",
        running_since=T1,
        ready=True,
        started=True,
    )
    got = status.build(recorded_pod(), running, first, T1)
    want = patch(44)
    assert got["phase"] == want["phase"] == "Running"
    assert got["containerStatuses"] == want["containerStatuses"]
    by_type = {c["type"]: c for c in got["conditions"]}
    for c in want["conditions"]:  # the patch carries only the conditions that changed
        mine = by_type[c["type"]]
        assert (mine["status"], mine["lastTransitionTime"]) == (c["status"], c["lastTransitionTime"])
        assert "reason" not in mine and "message" not in mine
    assert by_type["Initialized"]["lastTransitionTime"] == T0  # unchanged conditions keep their time
    assert status.build(recorded_pod(), running, got, "2026-11-28T10:00:00Z") == got  # no change, no send


def test_deleted_pod_reports_failed_like_edgecore() -> None:
    killed = Terminated(
        exit_code=137,
        reason="Error",
        started_at=T1,
        finished_at="2026-11-28T09:33:34Z",
        container_id="containerd://a047ba395fccb57fa5507706552245c778a1d8732622765f1e5b9f9bda3acb8a",
    )
    o = obs(
        container_id=killed.container_id,
        image_id="sha256:657208233674e10a5d0cb0b588be4fef2a822897357e36e3cf2f153703bb2afc",
        terminated=killed,
        sandbox=False,
        terminating=True,
    )
    got = status.build(recorded_pod(), o, None, "2026-11-28T09:33:35Z")
    want = patch(71)
    assert got["phase"] == want["phase"] == "Failed"
    assert got["containerStatuses"] == want["containerStatuses"]
    by_type = {c["type"]: c for c in got["conditions"]}
    for c in want["conditions"]:
        assert {k: by_type[c["type"]].get(k) for k in ("status", "reason")} == {
            k: c.get(k) for k in ("status", "reason")
        }


def test_phase_rules() -> None:
    pod = {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "i"}]}}
    ok = Terminated(0, "Completed", T0, T1)
    bad = Terminated(1, "Error", T0, T1)

    def ph(*cs: ContainerObs, init: list[ContainerObs] | None = None, policy: str = "OnFailure") -> str:
        pod["spec"]["restartPolicy"] = policy
        return status.phase(pod, PodObs(host_ip="h", containers=list(cs), init=init or []))

    assert ph(ContainerObs("a", "i")) == "Pending"
    assert ph(ContainerObs("a", "i", running_since=T0)) == "Running"
    assert ph(ContainerObs("a", "i", terminated=ok)) == "Succeeded"
    assert ph(ContainerObs("a", "i", terminated=bad)) == "Running"  # OnFailure will restart it
    assert ph(ContainerObs("a", "i", terminated=bad), policy="Never") == "Failed"
    assert ph(ContainerObs("a", "i", terminated=ok), policy="Always") == "Running"
    assert (
        ph(ContainerObs("a", "i", waiting_reason="CrashLoopBackOff", last=bad), policy="Always") == "Running"
    )
    assert ph(ContainerObs("a", "i", waiting_reason="ErrImagePull")) == "Pending"
    assert ph(ContainerObs("a", "i"), init=[ContainerObs("i", "i", running_since=T0)]) == "Pending"
    assert (
        ph(ContainerObs("a", "i"), init=[ContainerObs("i", "i", terminated=bad)], policy="Never") == "Failed"
    )


def test_qos_class() -> None:
    def pod(res: dict[str, Any]) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": "a", "resources": res}]}}

    assert status.qos_class(pod({})) == "BestEffort"
    assert status.qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    assert (
        status.qos_class(
            pod({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}})
        )
        == "Guaranteed"
    )
    assert status.qos_class(pod({"requests": {"cpu": "100m"}})) == "Burstable"
