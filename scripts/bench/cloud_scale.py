"""Cloud scale: N simulated edges (real mTLS websockets, in 1-2 separate processes) against a real
`kedge cloud run` over the embedded API server; prints one JSON line per mode.

Per mode (kedge: the cloud renews leases from the session, edges send keepalives every 15 s;
kubeedge: no kedge headers, each edge also renews its Lease through the cloud every 10 s, as recorded):
connect time (all N sessions up and Nodes registered), cloud RSS per edge, cloud CPU during the idle
window (the cloud process only, not the API server), API writes/s made by the cloud, idle payload bytes
per edge per minute (websocket text frames both ways; pings not counted), and pod fan-out latency
p50/p99 (pod create call → the pod's insert frame at its edge). Lease health after the idle window:
Lease writes/s, the oldest edge Lease (the node-lifecycle grace is 40 s), edge nodes not Ready, and
the API server's CPU in the same window; the load average closes the line.

    .venv/bin/python scripts/bench/cloud_scale.py --edges 1000 [--procs 2] [--mode both] [--idle 60]
        [--pods 200] [--set lease.renew_seconds=15]

The simulated edges live in _simedge.py (one process per --procs, each dialing from its own loopback
address); up to 10,000 edges fit the default file-descriptor hard limit (20,000 here).

Each mode gets a fresh API server and cloud (a previous mode's disconnected nodes would otherwise be
in their autonomy window, their leases renewed by the cloud, skewing the writes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SIM = Path(__file__).with_name("_simedge.py")  # the simulated edges, 1-2 processes


# ------------------------------------------------------------------------------------------ driver


def proc_stat(pid: int) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) of one process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def start_proc(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, cwd=REPO)


def wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"{what} did not start (exit {proc.poll()})")
        time.sleep(0.1)


async def status(root: Path) -> dict[str, Any]:
    from runtime.cloud.status_socket import read

    for _ in range(50):
        s = await asyncio.to_thread(read, root / "run" / "kedge" / "cloud.sock", 10.0)
        if s is not None:
            return s
        await asyncio.sleep(0.2)
    raise SystemExit("cloud status socket does not answer")


KEDGE_CMD = [sys.executable, "-m", "kubeedge_cli.entry"]


async def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One mode on a fresh API server and cloud: connect, settle, idle window, fan-out."""
    from runtime.kube.client import make_client

    procs: list[subprocess.Popen[bytes]] = []
    try:
        api, kubeconfig = start_apiserver(mode, work, procs)
        client = make_client(kubeconfig)
        await prepare_cluster(client)
        root = work / f"cloud-{mode}"
        cloud = start_proc(cloud_cmd(kubeconfig, root, args.set), work / f"cloud-{mode}.log")
        procs.append(cloud)
        server = await hub_address(root, cloud, work / f"cloud-{mode}.log")
        cert_dir = write_edge_certs(await load_ca(client), work / f"certs-{mode}", args.edges)
        await asyncio.sleep(2)
        rss0, cpu0 = proc_stat(cloud.pid)
        t_start = time.time()
        sims = Sims(await start_sims(mode, args, server, cert_dir), t_start)
        connect_s = await sims.all_ready()
        await settle(root, connect_s)
        rss1, _ = proc_stat(cloud.pid)
        idle = await idle_window(sims, root, cloud, api, args.idle)
        health = await lease_health(client, args.edges)
        rss2, _ = proc_stat(cloud.pid)
        latencies = await fan_out(client, sims, args.pods, args.edges)
        await sims.quit()
        await client.close()
        return {
            "mode": mode,
            "edges": args.edges,
            "sim_procs": args.procs,
            "connect_seconds": round(connect_s, 1),
            "cloud_rss_mb": round(rss2 / 2**20, 1),
            "cloud_rss_baseline_mb": round(rss0 / 2**20, 1),
            "cloud_rss_kb_per_edge": round((rss1 - rss0) / 1024 / max(1, args.edges), 1),
            **idle.figures(args.edges, cpu0),
            "fanout_pods": len(latencies),
            "fanout_p50_ms": _pct(latencies, 50),
            "fanout_p99_ms": _pct(latencies, 99),
            **idle.lag_figures(),
            **health,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        stop_procs(procs)


def stop_procs(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate (the last started first), kill what does not exit within 30 s."""
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_apiserver(mode: str, work: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[Any, Path]:
    data = work / f"api-{mode}"
    data.mkdir()
    cmd = [*KEDGE_CMD, "apiserver", "--data-dir", str(data), "--port", "0", "--in-memory"]
    api = start_proc([*cmd, "--watch-history", "200000"], work / f"api-{mode}.log")
    procs.append(api)
    kubeconfig = data / "admin.kubeconfig"
    wait_file(kubeconfig, api, 60, "apiserver")
    return api, kubeconfig


async def prepare_cluster(client: Any) -> None:
    """What `kedge init` installs that the cloud needs: the namespace and the ObjectSync CRD."""
    from runtime.kube.errors import AlreadyExists
    from runtime.kube.resources import CRDS, NAMESPACES, load_yaml
    from runtime.templates import templates_dir

    try:
        await client.create(NAMESPACES, {"metadata": {"name": "kubeedge"}})
    except AlreadyExists:
        pass
    crd = templates_dir() / "crds" / "reliablesyncs.kubeedge.io_objectsyncs.yaml"
    for doc in load_yaml(crd.read_text()):
        await client.create(CRDS, doc)


def cloud_cmd(kubeconfig: Path, root: Path, extra: list[str]) -> list[str]:
    sets = [
        "hub.websocket_port=0",
        "hub.cert_port=0",
        "stream.port=0",
        "hub.bind=127.0.0.1",
        "metrics_address=127.0.0.1:0",
        "log_level=warning",
        *extra,
    ]
    args = [a for s in sets for a in ("--set", s)]
    return [*KEDGE_CMD, "cloud", "run", "--kubeconfig", str(kubeconfig), "--root", str(root), *args]


async def hub_address(root: Path, cloud: subprocess.Popen[bytes], log: Path) -> str:
    addresses = root / "var" / "lib" / "kedge" / "cloud" / "addresses.json"
    for _ in range(600):
        if addresses.exists() and "hub" in json.loads(addresses.read_text()):
            break
        if cloud.poll() is not None:
            raise SystemExit("cloud exited; see " + str(log))
        await asyncio.sleep(0.1)
    return str(json.loads(addresses.read_text())["hub"])


async def load_ca(client: Any) -> Any:
    from runtime.cloud.pki_store import PKIStore

    ca = await PKIStore(client).load_ca()
    assert ca is not None
    return ca


def write_edge_certs(ca: Any, cert_dir: Path, edges: int) -> Path:
    """One key, a node certificate per edge, signed by the cluster's CA."""
    from runtime.pki import certs

    cert_dir.mkdir()
    key = certs.new_key()
    (cert_dir / "key.pem").write_bytes(certs.key_pem(key))
    (cert_dir / "ca.pem").write_bytes(certs.cert_pem(ca.cert))
    for i in range(edges):
        node = f"sim-{i:05d}"
        cert = ca.sign_node_csr(certs.make_csr(key, node), node, days=1)
        (cert_dir / f"{node}.pem").write_bytes(certs.cert_pem(cert))
    return cert_dir


async def start_sims(
    mode: str, args: argparse.Namespace, server: str, cert_dir: Path, extra: tuple[str, ...] = ()
) -> list[Any]:
    per = -(-args.edges // args.procs)
    sims = []
    for p in range(args.procs):
        first, count = p * per, max(0, min(per, args.edges - p * per))
        sims.append(
            await asyncio.create_subprocess_exec(
                *(sys.executable, str(SIM), "--server", server, "--certs", str(cert_dir), "--mode", mode),
                *("--first", str(first), "--count", str(count), "--source", f"127.0.1.{p + 1}"),
                *("--concurrency", str(args.concurrency)),
                *extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
            )
        )
    return sims


class Sims:
    """The simulator processes: their JSON lines on one queue, commands to all."""

    def __init__(self, procs: list[Any], t_start: float) -> None:
        self.procs, self.t_start = procs, t_start
        self.lines: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self.pumps = [asyncio.create_task(self.pump(i, s)) for i, s in enumerate(procs)]

    async def pump(self, i: int, s: Any) -> None:
        while True:
            raw = await s.stdout.readline()
            if not raw:
                return
            await self.lines.put((i, json.loads(raw)))

    async def all_ready(self) -> float:
        """Seconds until every simulator had all its edges connected and registered."""
        ready = 0
        while ready < len(self.procs):
            _, msg = await asyncio.wait_for(self.lines.get(), 3600)
            ready += bool(msg.get("ready"))
        return time.time() - self.t_start

    def tell(self, line: bytes) -> None:
        for s in self.procs:
            assert s.stdin is not None
            s.stdin.write(line)

    async def mark(self) -> tuple[int, float]:
        """Payload bytes so far over all edges, and when the last simulator counted them."""
        self.tell(b"mark\n")
        total, got, t = 0, 0, 0.0
        while got < len(self.procs):
            _, msg = await self.lines.get()
            if "bytes" in msg:
                total += msg["bytes"]
                t = max(t, msg["t"])
                got += 1
        return total, t

    async def quit(self) -> None:
        self.tell(b"quit\n")
        await asyncio.gather(*(asyncio.wait_for(s.wait(), 60) for s in self.procs), return_exceptions=True)
        for t in self.pumps:
            t.cancel()


async def settle(root: Path, connect_s: float) -> None:
    """Registration writes, Node updates sent down and their acks persisted."""
    await asyncio.sleep(max(10.0, connect_s / 2))
    for _ in range(300):
        st = await status(root)
        if st["pendingAcks"] == 0 and st["ackStateBacklog"] == 0:
            break
        await asyncio.sleep(1)


@dataclass
class Idle:
    """Counters read before and after the idle window: cloud status, CPU seconds, payload byte marks."""

    st0: dict[str, Any]
    st1: dict[str, Any]
    cpu: tuple[float, float]
    api_cpu: tuple[float, float]
    marks: tuple[tuple[int, float], tuple[int, float]]

    def __post_init__(self) -> None:
        (self.b0, tb0), (self.b1, tb1) = self.marks
        self.window = tb1 - tb0

    def delta(self, counter: str) -> float:
        return float(self.st1["counters"][counter] - self.st0["counters"][counter])

    def figures(self, edges: int, cpu0: float) -> dict[str, Any]:
        per_edge_min = (self.b1 - self.b0) / max(1, edges) / self.window * 60
        return {
            "cloud_cpu_idle_pct": round(100 * (self.cpu[1] - self.cpu[0]) / self.window, 1),
            "cloud_cpu_connect_s": round(self.cpu[0] - cpu0, 1),
            "api_writes_per_s": round(self.delta("apiWrites") / self.window, 1),
            "idle_bytes_per_edge_per_min": round(per_edge_min),
            "idle_kbit_s_per_edge": round(per_edge_min * 8 / 60 / 1000, 3),
        }

    def lag_figures(self) -> dict[str, Any]:
        counters0, counters1 = self.st0["counters"], self.st1["counters"]
        return {
            "idle_window_s": round(self.window, 1),
            "lease_writes_per_s": round(self.delta("leaseWrites") / self.window, 1),
            "apiserver_cpu_idle_pct": round(100 * (self.api_cpu[1] - self.api_cpu[0]) / self.window, 1),
            # how late the most overdue Lease renewal was dispatched: through connect+settle / at the end
            "lease_lag_max_before_idle_s": counters0.get("leaseRenewLagMaxSeconds"),
            "lease_lag_max_s": counters1.get("leaseRenewLagMaxSeconds"),
            # sessions held at the gate while renewals lagged; Ready conditions put back after Unknown
            "admissions_delayed": counters1.get("admissionsDelayed"),
            "ready_restored": counters1.get("readyRestored"),
        }


async def idle_window(sims: Sims, root: Path, cloud: Any, api: Any, idle: float) -> Idle:
    st0 = await status(root)
    _, cpu_a = proc_stat(cloud.pid)
    _, api_a = proc_stat(api.pid)
    m0 = await sims.mark()
    await asyncio.sleep(idle)
    m1 = await sims.mark()
    _, cpu_b = proc_stat(cloud.pid)
    _, api_b = proc_stat(api.pid)
    st1 = await status(root)
    return Idle(st0, st1, (cpu_a, cpu_b), (api_a, api_b), (m0, m1))


async def fan_out(client: Any, sims: Sims, pods: int, edges: int) -> list[float]:
    """Pods on distinct edges: seconds from each create call to its insert frame at the edge, sorted."""
    from runtime.kube.resources import PODS

    created: dict[str, float] = {}
    sample = min(pods, edges)
    for i in range(sample):
        name = f"fan-{i}"
        created[name] = time.time()
        node = f"sim-{(i * max(1, edges // sample)) % edges:05d}"
        spec = {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}
        await client.create(PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    latencies: list[float] = []
    end = time.monotonic() + 120
    while len(latencies) < sample and time.monotonic() < end:
        try:
            _, msg = await asyncio.wait_for(sims.lines.get(), max(0.1, end - time.monotonic()))
        except TimeoutError:
            break
        if msg.get("pod") in created:
            latencies.append(msg["t"] - created.pop(msg["pod"]))
    latencies.sort()
    return latencies


async def lease_health(client: Any, edges: int) -> dict[str, Any]:
    """After the idle window: the oldest edge Lease (must stay well inside the 40 s grace) and how
    many edge nodes the node-lifecycle controller does not see Ready."""
    from runtime.kube.resources import LEASES, NODES

    now = dt.datetime.now(dt.UTC)
    ages = []
    for lease in (await client.list(LEASES, namespace="kube-node-lease")).items:
        renewed = (lease.get("spec") or {}).get("renewTime")
        if lease["metadata"]["name"].startswith("sim-") and renewed:
            t = dt.datetime.strptime(renewed[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
            ages.append((now - t).total_seconds())
    not_ready: dict[str, int] = {}  # reason -> nodes
    for node in (await client.list(NODES)).items:
        conds = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        ready = conds.get("Ready") or {}
        if node["metadata"]["name"].startswith("sim-") and ready.get("status") != "True":
            why = f"{ready.get('status')}:{ready.get('reason')}@{str(ready.get('lastTransitionTime'))[11:19]}"
            not_ready[why] = not_ready.get(why, 0) + 1
    return {
        "leases": len(ages),
        "lease_age_max_s": round(max(ages), 1) if ages else None,
        "lease_age_p50_s": round(sorted(ages)[len(ages) // 2], 1) if ages else None,
        "nodes_not_ready": sum(not_ready.values()),
        "not_ready_reasons": dict(sorted(not_ready.items(), key=lambda kv: -kv[1])[:5]),
        "edges_expected": edges,
    }


def _pct(xs: list[float], p: int) -> float | None:
    if not xs:
        return None
    return round(1000 * xs[min(len(xs) - 1, int(len(xs) * p / 100))], 1)


async def driver(args: argparse.Namespace) -> None:
    modes = ["kedge", "kubeedge"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="kedge-cloud-scale-") as tmp:
        for mode in modes:
            result = await run_mode(mode, args, Path(tmp))
            result.update(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version())
            print(json.dumps(result), flush=True)


def sim_options(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """What every bench on simulated edges takes: how many, in how many processes, the cloud's config."""
    ap.add_argument("--edges", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=100, help="edges connecting at once per process")
    ap.add_argument("--set", action="append", default=[], help="extra cloud.toml override (a.b=c)")
    return ap


def main() -> None:
    ap = sim_options(argparse.ArgumentParser())
    ap.add_argument("--mode", choices=["kedge", "kubeedge", "both"], default="both")
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--pods", type=int, default=200)
    run(driver, ap.parse_args())


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: argparse.Namespace) -> None:
    """`main(args)` on uvloop with the descriptor limit raised (one per simulated session)."""
    import uvloop

    from runtime.cloud.hub.handshake import raise_nofile_limit

    raise_nofile_limit()
    uvloop.run(main(args))


if __name__ == "__main__":
    main()
