"""Scenario 1: an edge cut off by a real partition (nftables drop on its veth) while pods on it are
created, updated and deleted, and the other edge keeps working. After the heal everything converges:
no API update lost, no unchanged pod restarted, none evicted, and the taint `node.kedge.io/disconnected`
(set once the hub's 30 s keepalive notices the cut, design.md §5) cleared again; Kubernetes'
`node.kubernetes.io/unreachable` never set (the autonomy window keeps the Lease renewed). A device on
the cut edge's embedded broker reports through the partition; the last value reaches DeviceStatus.

    pytest tests/e2e/faults/test_partition.py -s            # 10 s
    pytest tests/e2e/faults/test_partition.py -s -m slow    # 2 min, then 10 min on the same lab
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.faults.harness import (
    DISCONNECTED,
    UNREACHABLE,
    FaultLab,
    NsEdge,
    change_pods,
    changes_reflected,
    converge,
    fault_lab,
    ready,
    running_containers,
    start_pods,
    taints,
    uids,
)
from tests.fixtures import find_binary, require
from tests.fixtures.devicecloud import device, model
from tests.fixtures.e2e import run
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root


def outcomes(lab: FaultLab, cut: NsEdge, other: NsEdge, prefix: str) -> dict[str, bool]:
    """Each API change made during the partition → whether the edges reflect it yet."""
    out = changes_reflected(lab, cut, prefix)
    pods, fresh = lab.pods(), f"{prefix}other-fresh"
    out[f"create {fresh}"] = fresh in running_containers(other) and ready(pods, fresh)
    return out


DEVICE = "thermo-fault"
MQTT_PORT = 18830  # inside the edge's own network namespace: no other test can hold it there


def add_device(lab: FaultLab, edge: NsEdge) -> None:
    docs = [
        {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel", **model()},
        {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device", **device(DEVICE, edge.node)},
    ]
    lab.cloud.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def report(edge: NsEdge, value: str) -> None:
    """A device on the edge's broker reports `value` (mosquitto_pub inside the edge's namespace)."""
    ts = int(time.time() * 1000)
    twin = {
        "temperature": {
            "actual": {"value": value, "metadata": {"timestamp": ts}},
            "metadata": {"type": "int"},
        }
    }
    body = json.dumps({"event_id": f"fault-{value}", "timestamp": ts, "twin": twin})
    topic = f"$hw/events/device/default/{DEVICE}/twin/update"
    mqtt_pub = find_binary("mosquitto_pub") or "mosquitto_pub"
    run(edge.ns.exec(mqtt_pub, "-h", "127.0.0.1", "-p", str(MQTT_PORT), "-q", "1", "-t", topic, "-m", body))


def reported_value(lab: FaultLab) -> str | None:
    st = lab.cloud.get("devicestatuses", DEVICE)
    for t in (st.get("status") or {}).get("twins") or []:
        if t.get("propertyName") == "temperature":
            return str((t.get("reported") or {}).get("value") or "") or None
    return None


def partition_round(lab: FaultLab, seconds: float, prefix: str = "", base: int = 30) -> dict[str, Any]:
    """One cut of `seconds` on edge 0 with pods named after `prefix` (rounds share a lab); the device
    reports `base`, then base+1 … base+5 during the cut."""
    cut, other = lab.edges
    start_pods(lab, cut, prefix)
    lab.pinned_pod(f"{prefix}other", other)
    eventually(lambda: f"{prefix}other" in running_containers(other), 60, "the other edge's pod Running")
    before = {**running_containers(cut), **running_containers(other)}
    before_uids = uids(lab)
    # every pod the cut does not change, earlier rounds' too
    unchanged = sorted(set(before) - {f"{prefix}changing", f"{prefix}gone"})

    cut.ns.partition()
    start = time.monotonic()
    change_pods(lab, cut, prefix)
    lab.pinned_pod(f"{prefix}other-fresh", other)
    seen: set[str] = set()
    values = [str(base + 1 + i) for i in range(5)]  # reported while cut off, spread over the partition
    while time.monotonic() - start < seconds:
        seen |= taints(lab, cut)
        if values and time.monotonic() - start > seconds * (5 - len(values)) / 5:
            report(cut, values.pop(0))
        time.sleep(1)
    for v in values:
        report(cut, v)
    dropped = cut.ns.dropped()
    cut.ns.heal()
    healed = time.monotonic()

    last: dict[str, bool] = {}
    final = str(base + 5)

    def converged() -> bool:
        last.update(outcomes(lab, cut, other, prefix))
        last["last twin value"] = reported_value(lab) == final
        return all(last.values())

    converge_s = converge(converged, "everything converged after the heal", healed)
    after = {**running_containers(cut), **running_containers(other)}
    restarts = sum(1 for name in unchanged if after.get(name) != before.get(name))
    now = uids(lab)
    kept = [*unchanged, f"{prefix}changing"]
    return lab.report(
        f"partition-{seconds:g}s",
        lost_api_updates=sum(1 for k, ok in last.items() if not ok and k != "last twin value"),
        lost=sorted(k for k, ok in last.items() if not ok),
        lost_twin_values=int(final) - int(reported_value(lab) or base),  # reports newer than DeviceStatus
        restarts_of_unchanged_pods=restarts,
        evicted=sorted(n for n in kept if now.get(n) != before_uids[n]),
        taints_seen=sorted(seen),
        dropped_packets=dropped,
        converge_seconds=converge_s,
    )


@contextmanager
def partition_lab(tmp: Path) -> Iterator[FaultLab]:
    """Two edges, a device on edge 0's embedded broker whose first report reached DeviceStatus."""
    require("mosquitto_pub")
    with fault_lab(tmp, edges=2, mqtt_port=MQTT_PORT) as lab:
        cut = lab.edges[0]
        add_device(lab, cut)

        def first() -> bool:
            report(cut, "30")
            return reported_value(lab) == "30"

        eventually(first, 60, "a first twin report in DeviceStatus", interval=1.0)
        yield lab


def assert_no_loss(f: dict[str, Any]) -> None:
    assert f["lost"] == [] and f["restarts_of_unchanged_pods"] == 0 and f["evicted"] == [], f
    assert f["lost_twin_values"] == 0, f
    assert UNREACHABLE not in f["taints_seen"], f


def test_partition_10s_converges_without_loss(tmp_path: Path) -> None:
    with partition_lab(tmp_path) as lab:
        assert_no_loss(partition_round(lab, 10))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_partitions_2min_and_10min_taint_then_clear_without_loss(tmp_path: Path) -> None:
    """Two cuts on one lab (the second with fresh pods): 2 minutes, then 10 minutes."""
    with partition_lab(tmp_path) as lab:
        for seconds, prefix, base in ((120, "a-", 30), (600, "b-", 40)):
            f = partition_round(lab, seconds, prefix, base)
            assert_no_loss(f)
            # design.md §5: the hub's keepalive (30 s) notices the cut and taints the node disconnected;
            # the autonomy window keeps its Lease renewed, so Kubernetes' unreachable taint never comes
            assert DISCONNECTED in f["taints_seen"], f
