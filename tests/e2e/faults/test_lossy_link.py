"""Scenario 7: the edge's link drops 20 % of packets (nftables `numgen random mod 100 < 20 drop` on its
veth, both directions) and its hub traffic takes 500 ms more each way (a delaying userspace proxy the
edge's connections are redirected to with nftables dnat). Pods created, updated and deleted meanwhile
still converge under the degraded link; no unchanged pod restarts.

    pytest tests/e2e/faults/test_lossy_link.py -s            # 45 s degraded (2 min: -m slow)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.faults.harness import (
    change_pods,
    changes_reflected,
    delaying_proxy,
    fault_lab,
    running_containers,
    start_pods,
)
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root


def lossy_scenario(tmp: Path, seconds: float) -> dict[str, Any]:
    with fault_lab(tmp, edges=1) as lab:
        edge = lab.edges[0]
        host = lab.lab.host_address
        with delaying_proxy(host, lab.cloud.hub_port, 0.5) as proxy:
            edge.ns.redirect(host, lab.cloud.hub_port, proxy.port)
            edge.ns.loss(20)
            edge.stop()  # reconnects through the redirect (the old connection was direct)
            edge.run_detached()
            eventually(edge.connected, 120, "the edge connected through the lossy, delayed link")
            assert proxy.connections > 0, "the edge's hub connection bypassed the delaying proxy"
            before = start_pods(lab, edge)
            start = time.monotonic()
            change_pods(lab, edge)
            last: dict[str, bool] = {}

            def converged() -> bool:
                last.update(changes_reflected(lab, edge))
                return all(last.values())

            try:
                eventually(converged, max(seconds, 60), "the changes converged over the degraded link")
            except AssertionError:
                pass  # reported as lost below
            converge = round(time.monotonic() - start, 1)
            time.sleep(max(0.0, seconds - (time.monotonic() - start)))  # the rest of the degraded window
            after = running_containers(edge)
            still, dropped = edge.connected(), edge.ns.dropped()
            edge.ns.heal()
        return lab.report(
            f"loss20-delay500ms-{seconds:g}s",
            lost_api_updates=sum(1 for ok in last.values() if not ok),
            lost=sorted(k for k, ok in last.items() if not ok),
            lost_twin_values=None,  # no device in this scenario
            restarts_of_unchanged_pods=int(after.get("steady") != before["steady"]),
            connected_at_end=still,
            dropped_packets=dropped,
            proxied_bytes={"up": proxy.bytes_up, "down": proxy.bytes_down},
            converge_seconds=converge,
        )


def check(f: dict[str, Any]) -> None:
    assert f["lost"] == [] and f["restarts_of_unchanged_pods"] == 0 and f["connected_at_end"], f
    assert f["dropped_packets"] > 0, f


def test_lossy_delayed_link_converges(tmp_path: Path) -> None:
    check(lossy_scenario(tmp_path, 45))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lossy_delayed_link_2min_converges(tmp_path: Path) -> None:
    check(lossy_scenario(tmp_path, 120))
