"""Reconnect storm (issue 21 scenario 8): N simulated edges (real mTLS websockets, _simedge.py with
--reconnect) on a real `kedge cloud run` over the embedded API server (its node-lifecycle controller
running, grace 40 s); pods on every k-th edge that tolerate an unreachable node for 0 s, so an edge
turned Ready=Unknown loses its pod at once. The cloud is SIGKILLed and started again on the same
ports; every edge dials again with kedge's own backoff (0.5 s doubling, jittered, cap 30 s) and cache
epoch. Prints one JSON line:

- restart_gap_s: kill → the new cloud listening; all_reconnected_s / all_ready_s: kill → every edge
  has a session again / and every Node is Ready with no unreachable taint and nothing pending;
- reconnect rate (edges per second between the first and the last reconnect, and the peak second),
  dial failures by kind (refused while down, HTTP 503 from the lease gate, timeouts);
- renewal lag: each edge Lease's longest gap between two renewals (watched; the one spanning the
  restart included) — max and median over the edges — and the cloud's own leaseRenewLagMaxSeconds
  (how overdue its most overdue renewal was when dispatched);
- nodes ever not Ready or tainted unreachable, pods evicted (gone, or marked for deletion), reliable
  messages the restarted cloud sent (unchanged edges: only what changed, i.e. none).

    .venv/bin/python scripts/bench/reconnect_storm.py --edges 1000 [--procs 2] [--pod-every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloud_scale import (  # the sibling bench, once its directory is on the path
    Sims,
    cloud_cmd,
    hub_address,
    load_ca,
    prepare_cluster,
    run,
    settle,
    sim_options,
    start_apiserver,
    start_proc,
    start_sims,
    status,
    stop_procs,
    write_edge_certs,
)

UNREACHABLE = "node.kubernetes.io/unreachable"


def storm_pod(name: str, node: str) -> dict[str, Any]:
    """A pod evicted the moment its node is not Ready (tolerationSeconds 0 for both NoExecute taints)."""
    tols = [
        {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}
        for k in (UNREACHABLE, "node.kubernetes.io/not-ready")
    ]
    spec = {"nodeName": node, "tolerations": tols, "containers": [{"name": "c", "image": "x"}]}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def place_pods(client: Any, sims: Sims, edges: int, every: int) -> dict[str, str]:
    """A pod on every `every`-th edge, each delivered to its edge: name → uid."""
    from runtime.kube.resources import PODS

    uids, waiting = {}, set()
    for i in range(0, edges, every):
        name = f"storm-{i:05d}"
        created = await client.create(PODS, storm_pod(name, f"sim-{i:05d}"))
        uids[name] = created["metadata"]["uid"]
        waiting.add(name)
    end = time.monotonic() + 300
    while waiting and time.monotonic() < end:
        _, msg = await asyncio.wait_for(sims.lines.get(), max(0.1, end - time.monotonic()))
        waiting.discard(msg.get("pod", ""))
    if waiting:
        raise SystemExit(f"{len(waiting)} pods never reached their edge")
    return uids


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Watcher:
    """Watches (no relists to load the API server): each edge Lease's renewals — the longest gap
    between two, the one spanning the restart included — and the Nodes not Ready or tainted
    unreachable, now and ever since ``arm()``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.last: dict[str, float] = {}  # lease → its last renewTime
        self.worst_gap: dict[str, float] = {}
        self.not_ready: set[str] = set()
        self.ever_not_ready: set[str] = set()
        self.armed = False

    def arm(self) -> None:
        self.armed = True
        self.ever_not_ready = set(self.not_ready)

    def gaps(self) -> list[float]:
        """Per lease, its longest gap between renewals so far (the open one up to now included)."""
        now = time.time()
        return sorted(max(self.worst_gap.get(n, 0.0), now - t) for n, t in self.last.items())

    async def run(self) -> None:
        await asyncio.gather(self._leases(), self._nodes())

    async def _leases(self) -> None:
        from runtime.kube.resources import LEASES
        from runtime.kube.watch import watch_with_resume

        async for _, lease in watch_with_resume(self.client, LEASES, namespace="kube-node-lease"):
            renewed = ((lease or {}).get("spec") or {}).get("renewTime")
            name = (lease or {}).get("metadata", {}).get("name", "")
            if not name.startswith("sim-") or not renewed:
                continue
            t, prev = _stamp(renewed), self.last.get(name)
            if prev is not None and t > prev and self.armed:
                self.worst_gap[name] = max(self.worst_gap.get(name, 0.0), t - prev)
            self.last[name] = max(t, prev or 0.0)

    async def _nodes(self) -> None:
        from runtime.kube.resources import NODES
        from runtime.kube.watch import watch_with_resume

        async for event, node in watch_with_resume(self.client, NODES):
            name = (node or {}).get("metadata", {}).get("name", "")
            if not name.startswith("sim-"):
                continue
            conds = (node or {}).get("status", {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            taints = (node or {}).get("spec", {}).get("taints") or []
            if event != "DELETED" and (not ready or any(t.get("key") == UNREACHABLE for t in taints)):
                self.not_ready.add(name)
                if self.armed:
                    self.ever_not_ready.add(name)
            else:
                self.not_ready.discard(name)


async def reconnects(sims: Sims, edges: int, within: float) -> list[dict[str, Any]]:
    """The simulators' ``reconnected`` lines until every edge is back (or `within` seconds passed)."""
    got: dict[str, dict[str, Any]] = {}
    end = time.monotonic() + within
    while len(got) < edges and time.monotonic() < end:
        try:
            _, msg = await asyncio.wait_for(sims.lines.get(), max(0.1, end - time.monotonic()))
        except TimeoutError:
            break
        if "reconnected" in msg:
            got[msg["reconnected"]] = msg
    return list(got.values())


def reconnect_figures(back: list[dict[str, Any]]) -> dict[str, Any]:
    """Reconnect rate (mean between the first and the last, and the busiest second) and dial failures."""
    refused: dict[str, int] = {}
    for m in back:
        for kind, n in m["refused"].items():
            refused[kind] = refused.get(kind, 0) + n
    times = sorted(m["t"] for m in back)
    per_second: dict[int, int] = {}
    for t in times:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "reconnect_rate_per_s": round(len(times) / span, 1) if span else None,
        "reconnect_peak_per_s": max(per_second.values(), default=0),
        "dial_failures": refused,
    }


async def storm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from runtime.kube.client import make_client
    from runtime.kube.resources import PODS

    procs: list[Any] = []
    try:
        _api, kubeconfig = start_apiserver("storm", work, procs)
        client = make_client(kubeconfig)
        await prepare_cluster(client)
        root = work / "cloud"
        cloud = start_proc(cloud_cmd(kubeconfig, root, args.set), work / "cloud-1.log")
        procs.append(cloud)
        server = await hub_address(root, cloud, work / "cloud-1.log")
        cert_dir = write_edge_certs(await load_ca(client), work / "certs", args.edges)
        sims = Sims(await start_sims("kedge", args, server, cert_dir, ("--reconnect",)), time.time())
        connect_s = await sims.all_ready()
        await settle(root, connect_s)
        uids = await place_pods(client, sims, args.edges, args.pod_every)
        await settle(root, 0.0)

        watcher = Watcher(client)
        watching = asyncio.create_task(watcher.run())
        await asyncio.sleep(2)  # listed: every Lease's last renewal before the kill is known
        watcher.arm()
        addresses = root / "var" / "lib" / "kedge" / "cloud" / "addresses.json"
        boot = json.loads(addresses.read_text())["bootstrap"].rsplit(":", 1)[1]
        same_ports = [f"hub.websocket_port={server.rsplit(':', 1)[1]}", f"hub.cert_port={boot}"]
        os.kill(cloud.pid, signal.SIGKILL)
        cloud.wait()
        t_kill = time.time()
        addresses.unlink()  # the dead cloud's; the new one writes its own once it listens
        cloud = start_proc(cloud_cmd(kubeconfig, root, [*args.set, *same_ports]), work / "cloud-2.log")
        procs.append(cloud)
        await hub_address(root, cloud, work / "cloud-2.log")
        restart_gap = time.time() - t_kill
        n = args.edges
        back = await reconnects(sims, n, args.timeout)
        t_back = max((m["t"] for m in back), default=time.time())
        end = time.monotonic() + args.timeout
        st = await status(root)
        while time.monotonic() < end and (watcher.not_ready or st["pendingAcks"] or len(back) < n):
            await asyncio.sleep(1)
            st = await status(root)
        t_ready = time.time()
        await asyncio.sleep(5)  # a last look: nothing turns Unknown right after
        gaps = watcher.gaps()
        watching.cancel()
        pods = {p["metadata"]["name"]: p["metadata"] for p in (await client.list(PODS)).items}
        evicted = [n for n, uid in uids.items() if (pods.get(n) or {}).get("uid") != uid]
        evicted += [n for n in uids if (pods.get(n) or {}).get("deletionTimestamp")]  # being evicted
        counters = st["counters"]
        await sims.quit()
        await client.close()
        return {
            "bench": "reconnect_storm",
            "edges": args.edges,
            "pods": len(uids),
            "sim_procs": args.procs,
            "first_connect_s": round(connect_s, 1),
            "restart_gap_s": round(restart_gap, 1),
            "reconnected": len(back),
            "all_reconnected_s": round(t_back - t_kill, 1),
            "all_ready_s": round(t_ready - t_kill, 1),
            **reconnect_figures(back),
            "leases_seen": len(gaps),
            "renewal_gap_max_s": round(gaps[-1], 1) if gaps else None,
            "renewal_gap_median_s": round(statistics.median(gaps), 1) if gaps else None,
            "cloud_lease_lag_max_s": counters.get("leaseRenewLagMaxSeconds"),
            "admissions_delayed": counters.get("admissionsDelayed"),
            "resync_messages_sent": counters.get("messagesSent"),
            "nodes_ever_not_ready": len(watcher.ever_not_ready),
            "nodes_not_ready_at_end": len(watcher.not_ready),
            "pods_evicted": len(set(evicted)),
            "connected_at_end": st["connectedEdges"],
            "pending_acks_at_end": st["pendingAcks"],
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        stop_procs(procs)


async def driver(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kedge-reconnect-storm-") as tmp:
        result = await storm(args, Path(tmp))
    result.update(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version())
    print(json.dumps(result), flush=True)


def main() -> None:
    ap = sim_options(argparse.ArgumentParser())
    ap.add_argument("--pod-every", type=int, default=10, help="a pod on every k-th edge")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    run(driver, ap.parse_args())


if __name__ == "__main__":
    main()
