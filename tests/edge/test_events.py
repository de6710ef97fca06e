"""The edge's event recorder (runtime/edge/events.py): kubelet's event shape and client-go's correlator
(dedup into a growing count, aggregation of similar messages, spam filter), bounded queue, delivery."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

from runtime.edge.events import BURST, COMBINED, QUEUE, WINDOW, Recorder
from runtime.edge.nodestatus import node_events
from runtime.protocol import OP_INSERT, OP_PATCH, Message

POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"}}


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def body(msg: Message) -> dict[str, Any]:
    c = msg.content
    return dict(json.loads(c) if isinstance(c, str) else c)


def test_a_pod_event_has_kubelets_shape_and_goes_as_insert() -> None:
    rec = Recorder("edge-1", Clock())
    rec.pod(POD, "app", "Normal", "Pulling", 'Pulling image "busybox:1"')
    (msg,) = rec.queue
    ev = body(msg)
    assert msg.operation == OP_INSERT and msg.group == "meta" and msg.source == "edged"
    assert msg.resource == f"shop/event/{ev['metadata']['name']}"
    assert ev["metadata"]["name"].startswith("web.")
    assert ev["involvedObject"] == {
        "kind": "Pod", "namespace": "shop", "name": "web", "uid": "u-1", "apiVersion": "v1",
        "resourceVersion": "7", "fieldPath": "spec.containers{app}",
    }  # fmt: skip
    assert ev["source"] == {"component": "kubelet", "host": "edge-1"}
    assert (ev["reportingComponent"], ev["reportingInstance"]) == ("kubelet", "edge-1")
    assert (ev["type"], ev["reason"], ev["count"]) == ("Normal", "Pulling", 1)
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2027-01-15T08:00:00Z"


def test_a_repeated_event_is_one_object_with_a_growing_count() -> None:
    clock = Clock()
    rec = Recorder("edge-1", clock)
    for _ in range(5):
        rec.pod(POD, "app", "Warning", "BackOff", "Back-off restarting failed container app in pod web")
        clock.t += 7
    msgs = list(rec.queue)
    assert [m.operation for m in msgs] == [OP_INSERT] + [OP_PATCH] * 4
    assert len({m.resource for m in msgs}) == 1
    last = body(msgs[-1])
    assert last["count"] == 5 and last["lastTimestamp"] > last["firstTimestamp"]
    # after the correlator's window a new object starts
    clock.t += WINDOW + 1
    rec.pod(POD, "app", "Warning", "BackOff", "Back-off restarting failed container app in pod web")
    assert rec.queue[-1].operation == OP_INSERT and rec.queue[-1].resource != msgs[0].resource


def test_similar_events_with_different_messages_are_combined() -> None:
    clock = Clock()
    rec = Recorder("edge-1", clock)
    for i in range(14):
        rec.pod(POD, "app", "Warning", "Unhealthy", f"Liveness probe failed: attempt {i}")
        clock.t += 1
    msgs = [body(m) for m in rec.queue]
    assert [m["message"].startswith(COMBINED) for m in msgs] == [False] * 9 + [True] * 5
    assert msgs[-1]["count"] == 5 and msgs[-1]["message"] == COMBINED + "Liveness probe failed: attempt 13"


def test_the_spam_filter_lets_a_burst_through_then_one_per_five_minutes() -> None:
    clock = Clock()
    rec = Recorder("edge-1", clock)
    for i in range(BURST + 10):
        rec.pod(POD, "app", "Normal", "Pulling", f"m{i % 3}")
    assert (rec.recorded, rec.filtered) == (BURST, 10)
    clock.t += 300
    rec.pod(POD, "app", "Normal", "Pulling", "m0")
    assert rec.recorded == BURST + 1


def test_node_events_go_to_default_with_the_node_as_object() -> None:
    rec = Recorder("edge-1", Clock())
    rec.node("Normal", "NodeReady", "Node edge-1 status is now: NodeReady")
    ev = body(rec.queue[0])
    assert rec.queue[0].resource.startswith("default/event/edge-1.")
    assert ev["involvedObject"] == {"kind": "Node", "name": "edge-1", "uid": "edge-1", "namespace": ""}


def test_the_queue_is_bounded_dropping_the_oldest() -> None:
    clock = Clock()
    rec = Recorder("edge-1", clock, queue=QUEUE)
    for i in range(QUEUE + 5):
        rec.pod({"metadata": {"name": f"p{i}", "namespace": "a", "uid": str(i)}}, None, "Normal", "X", "y")
    assert len(rec.queue) == QUEUE and rec.dropped == 5
    assert body(rec.queue[0])["involvedObject"]["name"] == "p5"


def test_run_hands_events_to_send_in_order() -> None:
    async def go() -> list[str]:
        rec = Recorder("edge-1", Clock())
        sent: list[str] = []

        async def send(msg: Message) -> None:
            sent.append(body(msg)["reason"])

        stop = asyncio.Event()
        task = asyncio.create_task(rec.run(send, stop))
        for r in ("Pulling", "Pulled", "Created", "Started"):
            rec.pod(POD, "app", "Normal", r, r)
            await asyncio.sleep(0)
        for _ in range(50):
            if len(sent) == 4:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
        assert rec.status()["sent"] == 4
        return sent

    assert asyncio.run(go()) == ["Pulling", "Pulled", "Created", "Started"]


def test_node_events_for_ready_changes_and_a_reboot() -> None:
    def status(ready: str, boot: str) -> dict[str, Any]:
        return {"conditions": [{"type": "Ready", "status": ready}], "nodeInfo": {"bootID": boot}}

    first = node_events("n1", None, status("True", "b1"))
    assert first == [("Normal", "NodeReady", "Node n1 status is now: NodeReady")]
    assert node_events("n1", status("True", "b1"), status("True", "b1")) == []
    back = node_events("n1", status("Unknown", "b1"), status("True", "b2"))
    assert back == [
        ("Warning", "Rebooted", "Node n1 has been rebooted, boot id: b2"),
        ("Normal", "NodeReady", "Node n1 status is now: NodeReady"),
    ]
    assert node_events("n1", status("True", "b2"), status("False", "b2")) == [
        ("Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady")
    ]


def test_the_event_counters_are_prometheus_series() -> None:

    from runtime.edge.metrics import EdgeMetrics
    from tests.fixtures import promcheck

    rec = Recorder("edge-1", Clock())
    for _ in range(BURST + 2):
        rec.pod(POD, "app", "Warning", "BackOff", "same")
    text = EdgeMetrics(dict).exposition({"events": rec.status()})[0].decode()
    got = {
        (s.name, s.labels.get("outcome")): s.value
        for f in promcheck.families(text)
        for s in f.samples
        if s.name.startswith("kedge_edge_events")
    }
    assert got == {
        ("kedge_edge_events_total", "recorded"): BURST,
        ("kedge_edge_events_total", "sent"): 0,
        ("kedge_edge_events_total", "filtered"): 2,
        ("kedge_edge_events_total", "dropped"): 0,
        ("kedge_edge_events_queued", None): BURST,
    }
    assert promcheck.lint(text) == []


def test_node_pressure_events_at_registration_and_on_change() -> None:
    def status(memory: str, disk: str = "False", pid: str = "False") -> dict[str, Any]:
        conds = [("MemoryPressure", memory), ("DiskPressure", disk), ("PIDPressure", pid), ("Ready", "True")]
        return {"conditions": [{"type": t, "status": s} for t, s in conds]}

    first = node_events("n1", None, status("False"))  # kubelet's first status: all four
    assert [r for _, r, _ in first] == [
        "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"
    ]  # fmt: skip
    assert first[0] == ("Normal", "NodeHasSufficientMemory", "Node n1 status is now: NodeHasSufficientMemory")
    assert node_events("n1", status("False"), status("False")) == []
    pressed = node_events("n1", status("False"), status("True", disk="True"))
    assert pressed == [
        ("Normal", "NodeHasInsufficientMemory", "Node n1 status is now: NodeHasInsufficientMemory"),
        ("Normal", "NodeHasDiskPressure", "Node n1 status is now: NodeHasDiskPressure"),
    ]
    relieved = node_events("n1", status("True", pid="True"), status("False"))
    assert [r for _, r, _ in relieved] == ["NodeHasSufficientMemory", "NodeHasSufficientPID"]


def test_cordon_and_uncordon_are_node_schedulable_events(tmp_path: Any) -> None:
    from runtime.edge.nodestatus import NodeStatus

    clock = Clock()
    rec = Recorder("n1", clock=clock)
    st = NodeStatus(None, "n1", state_dir=tmp_path, ip="192.0.2.9", events=rec)  # type: ignore[arg-type]
    node = {"metadata": {"name": "n1", "uid": "u"}, "spec": {}}
    st.cloud_node(node)  # schedulable, as kubelet assumes at start: nothing to say
    assert rec.queue == collections.deque()
    st.cloud_node({**node, "spec": {"unschedulable": True}})
    st.cloud_node({**node, "spec": {"unschedulable": True}})  # unchanged: once
    clock.t += 1
    st.cloud_node(node)
    got = [(body(m)["reason"], body(m)["message"], body(m)["involvedObject"]["kind"]) for m in rec.queue]
    assert got == [
        ("NodeNotSchedulable", "Node n1 status is now: NodeNotSchedulable", "Node"),
        ("NodeSchedulable", "Node n1 status is now: NodeSchedulable", "Node"),
    ]
