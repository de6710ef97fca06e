"""Pod events end to end (issue 20, "Events"): the edge records what kubelet records, the real cloud
writes them to the embedded API server, kubectl shows them. One cloud + edge for the module (real
`kedge init --embedded`, `kedge join`, Docker, kubectl); each test makes its own pod.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.fixtures.e2e import E2E, alive
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"


def apply_pod(e2e: E2E, name: str, container: dict[str, Any]) -> None:
    doc = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": e2e.edge.node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", **container}]},
    }  # fmt: skip
    e2e.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))


def events_of(e2e: E2E, pod: str) -> list[dict[str, Any]]:
    sel = f"involvedObject.kind=Pod,involvedObject.name={pod}"
    return list(e2e.cloud.get("events", "--field-selector", sel)["items"])


def with_reason(e2e: E2E, pod: str, reason: str, *, message: str = "") -> list[dict[str, Any]] | None:
    found = [e for e in events_of(e2e, pod) if e["reason"] == reason and message in e["message"]]
    return found or None


def delete(e2e: E2E, name: str) -> None:
    e2e.cloud.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_the_node_has_starting_and_ready_events(e2e: E2E) -> None:
    sel = f"involvedObject.kind=Node,involvedObject.name={e2e.edge.node}"

    def reasons() -> set[str] | None:
        got = {e["reason"] for e in e2e.cloud.get("events", "-A", "--field-selector", sel)["items"]}
        return got if {"Starting", "NodeReady"} <= got else None

    eventually(reasons, 60, "the node's Starting and NodeReady events")
    text = e2e.cloud.kubectl("describe", "node", e2e.edge.node)
    assert f"Node {e2e.edge.node} status is now: NodeReady" in text.split("Events:", 1)[1], text


def test_an_unpullable_image_gives_kubelets_events_in_describe(e2e: E2E) -> None:
    name = f"pull-{uuid.uuid4().hex[:5]}"
    apply_pod(e2e, name, {"image": "127.0.0.1:1/none:1", "command": ["true"]})
    try:
        eventually(lambda: with_reason(e2e, name, "BackOff", message="Back-off pulling image"), 60,
                   "a BackOff event for the pull")  # fmt: skip
        evs = events_of(e2e, name)
        reasons = {(e["type"], e["reason"], e["message"].split(":")[0]) for e in evs}
        assert ("Normal", "Pulling", 'Pulling image "127.0.0.1') in reasons
        assert ("Warning", "Failed", 'Failed to pull image "127.0.0.1') in reasons
        assert ("Warning", "Failed", "Error") in reasons  # "Error: ErrImagePull"
        assert any(e["message"] == "Error: ErrImagePull" for e in evs)
        for e in evs:
            assert e["source"] == {"component": "kubelet", "host": e2e.edge.node}
            assert e["reportingComponent"] == "kubelet" and e["reportingInstance"] == e2e.edge.node
            assert e["involvedObject"]["fieldPath"] == "spec.containers{app}"
        text = e2e.cloud.kubectl("describe", "pod", name)
        events = text.split("Events:", 1)[1]
        for want in ("Pulling", "ErrImagePull", "Back-off pulling image", "kubelet"):
            assert want in events, text
    finally:
        delete(e2e, name)


def test_a_crash_loop_is_one_backoff_event_with_a_growing_count(e2e: E2E) -> None:
    name = f"crash-{uuid.uuid4().hex[:5]}"
    apply_pod(e2e, name, {"image": IMAGE, "command": ["sh", "-c", "exit 3"]})
    try:
        first = eventually(lambda: with_reason(e2e, name, "BackOff"), 60, "a crash-loop BackOff event")
        assert len(first) == 1 and first[0]["type"] == "Warning"
        assert first[0]["message"].startswith(
            f"Back-off restarting failed container app in pod {name}_default("
        )
        more = first[0]["count"] + 1
        grown = eventually(
            lambda: [e for e in with_reason(e2e, name, "BackOff") or [] if e["count"] > more],
            60, "the BackOff count to grow",
        )  # fmt: skip
        assert len(with_reason(e2e, name, "BackOff") or []) == 1  # still one object
        assert grown[0]["metadata"]["name"] == first[0]["metadata"]["name"]
        for reason in ("Created", "Started"):
            ev = with_reason(e2e, name, reason)
            assert ev and ev[0]["message"] == f"{reason} container app", ev
        assert with_reason(e2e, name, "Pulled", message="already present on machine")
    finally:
        delete(e2e, name)


def test_a_failing_liveness_probe_is_unhealthy_then_killing(e2e: E2E) -> None:
    name = f"probe-{uuid.uuid4().hex[:5]}"
    probe = {
        "exec": {"command": ["sh", "-c", "echo not-ok; exit 1"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    apply_pod(e2e, name, {"image": IMAGE, "command": ["sleep", "3600"], "livenessProbe": probe})
    try:
        ev = eventually(lambda: with_reason(e2e, name, "Unhealthy"), 60, "an Unhealthy event")
        assert ev[0]["type"] == "Warning" and ev[0]["message"] == "Liveness probe failed: not-ok", ev
        kill = eventually(lambda: with_reason(e2e, name, "Killing"), 60, "a Killing event")
        assert kill[0]["message"] == "Container app failed liveness probe, will be restarted"
    finally:
        delete(e2e, name)


def test_a_missing_configmap_volume_is_failed_mount(e2e: E2E) -> None:
    name = f"mount-{uuid.uuid4().hex[:5]}"
    doc = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": e2e.edge.node, "terminationGracePeriodSeconds": 1,
                 "volumes": [{"name": "cfg", "configMap": {"name": f"{name}-absent"}}],
                 "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                                 "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]},
    }  # fmt: skip
    e2e.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    try:
        ev = eventually(lambda: with_reason(e2e, name, "FailedMount"), 60, "a FailedMount event")
        assert ev[0]["type"] == "Warning" and ev[0]["message"].startswith("MountVolume.SetUp failed")
        assert f"{name}-absent" in ev[0]["message"], ev[0]["message"]
        assert "fieldPath" not in ev[0]["involvedObject"]
    finally:
        delete(e2e, name)


def test_kubectl_events_and_get_events_watch(e2e: E2E) -> None:
    name = f"watch-{uuid.uuid4().hex[:5]}"
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "get", "events", "--watch-only",
           "--field-selector", f"involvedObject.name={name}", "-o", "name"]  # fmt: skip
    watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the watch is established before the pod exists
        apply_pod(e2e, name, {"image": IMAGE, "command": ["sleep", "3600"]})
        assert watch.stdout is not None
        line = watch.stdout.readline()  # blocks until the first event of the pod arrives
        assert line.startswith("event/") and name in line, line
        eventually(lambda: with_reason(e2e, name, "Started"), 60, "a Started event")
        out = e2e.cloud.kubectl("events", "--for", f"pod/{name}")
        assert "Started" in out and "Created" in out, out
        delete(e2e, name)
        kill = eventually(lambda: with_reason(e2e, name, "Killing"), 60, "a Killing event for the delete")
        assert kill[0]["message"] == "Stopping container app" and kill[0]["type"] == "Normal"
    finally:
        watch.kill()
        watch.wait()
        delete(e2e, name)


def queued(e2e: E2E) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        _, doc = e2e.edge.status()
        return doc if doc["edge"]["cloud"]["outbox"] else None

    return check


def test_events_while_the_cloud_is_away_arrive_after_reconnect(e2e: E2E) -> None:
    name = f"away-{uuid.uuid4().hex[:5]}"
    apply_pod(e2e, name, {"image": IMAGE, "command": ["sh", "-c", "sleep 6; exit 1"]})
    try:
        eventually(lambda: with_reason(e2e, name, "Started"), 60, "the pod started")
        e2e.cloud.stop_cloud()
        eventually(lambda: not e2e.edge.connected(), 30, "the edge to see the cloud gone")
        # the container exits while the cloud is away: its BackOff and restart events queue
        doc = eventually(queued(e2e), 60, "events queued in the outbox")
        assert doc["edge"]["events"]["recorded"] > 0
        assert not with_reason(e2e, name, "BackOff")  # not delivered yet
        e2e.cloud.init()  # the cloud back
        back = eventually(lambda: with_reason(e2e, name, "BackOff"), 90, "the offline BackOff event")
        assert back[0]["source"]["host"] == e2e.edge.node
        eventually(lambda: e2e.edge.connected(), 60, "the edge reconnected")
    finally:
        delete(e2e, name)


def test_events_survive_an_api_server_restart(e2e: E2E) -> None:
    name = f"keep-{uuid.uuid4().hex[:5]}"
    apply_pod(e2e, name, {"image": IMAGE, "command": ["sleep", "3600"]})
    try:
        before = eventually(lambda: with_reason(e2e, name, "Started"), 60, "a Started event")
        pid = e2e.cloud.pid("apiserver")
        assert pid is not None and alive(pid)
        os.kill(pid, signal.SIGTERM)
        eventually(lambda: not alive(pid), 30, "the API server to stop")
        e2e.cloud.init()
        after = eventually(lambda: with_reason(e2e, name, "Started"), 60, "the event after the restart")
        assert after[0]["metadata"]["uid"] == before[0]["metadata"]["uid"]
        eventually(lambda: e2e.edge.connected(), 60, "the edge reconnected")
    finally:
        delete(e2e, name)


def test_cordon_and_pressure_events_of_the_node(e2e: E2E) -> None:
    """The pressure conditions' events at registration; NodeNotSchedulable / NodeSchedulable on
    `kubectl cordon` / `uncordon`."""
    node = e2e.edge.node
    sel = f"involvedObject.kind=Node,involvedObject.name={node}"

    def reasons(*want: str) -> set[str] | None:
        got = {e["reason"] for e in e2e.cloud.get("events", "-A", "--field-selector", sel)["items"]}
        return got if set(want) <= got else None

    eventually(lambda: reasons("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"),
               60, "the node's pressure events from its registration")  # fmt: skip
    e2e.cloud.kubectl("cordon", node)
    try:
        eventually(lambda: reasons("NodeNotSchedulable"), 60, "NodeNotSchedulable after kubectl cordon")
    finally:
        e2e.cloud.kubectl("uncordon", node)
    eventually(lambda: reasons("NodeSchedulable"), 60, "NodeSchedulable after kubectl uncordon")
    text = e2e.cloud.kubectl("describe", "node", node).split("Events:", 1)[1]
    assert f"Node {node} status is now: NodeNotSchedulable" in text, text
