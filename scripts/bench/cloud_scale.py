"""Cloud scale: N simulated edges (real mTLS websockets, in 1-2 separate processes) against a real
`kedge cloud run` over the embedded API server; prints one JSON line per mode.

Per mode (kedge: the cloud renews leases from the session, edges send keepalives every 15 s;
kubeedge: no kedge headers, each edge also renews its Lease through the cloud every 10 s, as recorded):
connect time (all N sessions up and Nodes registered), cloud RSS per edge, cloud CPU during the idle
window (the cloud process only, not the API server), API writes/s made by the cloud, idle payload bytes
per edge per minute (websocket text frames both ways; pings not counted), and pod fan-out latency
p50/p99 (pod create call → the pod's insert frame at its edge).

    .venv/bin/python scripts/bench/cloud_scale.py --edges 1000 [--procs 2] [--mode both] [--idle 60]
        [--pods 200]

Each mode gets a fresh API server and cloud (a previous mode's disconnected nodes would otherwise be
in their autonomy window, their leases renewed by the cloud, skewing the writes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"
KEEPALIVE = 15.0
LEASE_EVERY = 10.0


# ------------------------------------------------------------------------------------------ edge side


def node_body(node: str) -> dict[str, Any]:
    return {"metadata": {"name": node, "labels": {"node-role.kubernetes.io/edge": "",
                                                  "kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
            "spec": {}, "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                                   "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}


class SimEdge:
    def __init__(self, node: str) -> None:
        self.node = node
        self.ws: Any = None
        self.waiters: dict[str, asyncio.Future[Any]] = {}


async def sim(args: argparse.Namespace) -> None:
    """One simulator process: edges [first, first+count), commands on stdin, JSON lines on stdout."""
    from websockets.asyncio.client import connect

    from runtime import __version__
    from runtime.protocol import ack, decode, encode, keepalive, new_message

    cert_dir = Path(args.certs)
    ca = (cert_dir / "ca.pem").read_bytes().decode()
    key = str(cert_dir / "key.pem")
    kedge = args.mode == "kedge"
    edges = [SimEdge(f"sim-{i:05d}") for i in range(args.first, args.first + args.count)]
    counted = [0]  # payload bytes both ways
    t0 = time.time()
    out_lock = asyncio.Lock()

    async def emit(obj: dict[str, Any]) -> None:
        async with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def send_text(e: SimEdge, msg: Any) -> Any:
        data = encode(msg)
        counted[0] += len(data)
        return e.ws.send(data)

    async def reader(e: SimEdge) -> None:
        with contextlib.suppress(Exception):
            await read_loop(e)

    async def read_loop(e: SimEdge) -> None:
        async for data in e.ws:
            counted[0] += len(data)
            msg = decode(data)
            if msg.parent_msg_id and msg.operation == "response":
                fut = e.waiters.pop(msg.parent_msg_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                if msg.content != "OK":
                    await send_text(e, ack(msg))
                continue
            await send_text(e, ack(msg))
            if os.environ.get("KEDGE_BENCH_DEBUG"):
                print(f"{time.time():.1f} {e.node} {msg.operation} {msg.resource} {msg.resourceversion}",
                      file=sys.stderr)
            if msg.operation == "insert" and "/pod/" in msg.resource:
                await emit({"pod": msg.resource.rsplit("/", 1)[1], "t": time.time()})

    async def request(e: SimEdge, op: str, resource: str, content: Any) -> Any:
        msg = new_message("edged", "meta", op, resource, content)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        e.waiters[msg.msg_id] = fut
        await send_text(e, msg)
        return await asyncio.wait_for(fut, 120)

    sem = asyncio.Semaphore(args.concurrency)

    async def bring_up(e: SimEdge) -> None:
        async with sem:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca)
            ctx.load_cert_chain(str(cert_dir / f"{e.node}.pem"), key)
            headers = {"node_id": e.node, "project_id": PROJECT}
            if kedge:
                headers.update({"X-Kedge-Version": __version__, "X-Kedge-Cache-Epoch": uuid.uuid4().hex})
            for attempt in range(20):
                try:
                    e.ws = await connect(f"wss://{args.server}/{PROJECT}/{e.node}/events", ssl=ctx,
                                         additional_headers=headers, proxy=None, open_timeout=120,
                                         ping_interval=2 * KEEPALIVE if kedge else None, max_size=None,
                                         compression=None)
                    break
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.5 + attempt)
            asyncio.get_running_loop().create_task(reader(e))
            resp = await request(e, "insert", f"null/node/{e.node}", node_body(e.node))
            assert isinstance(resp.content, dict), resp.content
            if not kedge:
                lease = {"metadata": {"name": e.node, "namespace": "kube-node-lease"},
                         "spec": {"holderIdentity": e.node, "leaseDurationSeconds": 40,
                                  "renewTime": _now()}}
                await request(e, "insert", f"kube-node-lease/lease/{e.node}", lease)

    async def spread(every: float, action: Any) -> None:
        """One task per simulator (not per edge): each edge acts once per period, offsets spread."""
        offsets = sorted((random.uniform(0, every), e) for e in edges) if edges else []
        start = time.monotonic()
        cycle = 0
        while True:
            for off, e in offsets:
                delay = start + cycle * every + off - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                asyncio.get_running_loop().create_task(action(e))
            cycle += 1

    async def ka(e: SimEdge) -> None:
        if e.ws is not None:  # keepalives start with the session, also while the others connect
            with contextlib.suppress(Exception):
                await send_text(e, keepalive())

    async def lease(e: SimEdge) -> None:
        body = {"metadata": {"name": e.node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": e.node, "leaseDurationSeconds": 40, "renewTime": _now()}}
        try:
            await request(e, "update", f"kube-node-lease/lease/{e.node}", body)
        except TimeoutError:
            pass

    tasks = [asyncio.create_task(spread(KEEPALIVE, ka))]
    await asyncio.gather(*(bring_up(e) for e in edges))
    await emit({"ready": True, "seconds": time.time() - t0, "count": len(edges)})
    if not kedge:
        tasks.append(asyncio.create_task(spread(LEASE_EVERY, lease)))
    loop = asyncio.get_running_loop()
    reader_in = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader_in), sys.stdin)
    while True:
        line = (await reader_in.readline()).decode().strip()
        if not line or line == "quit":
            break
        if line == "mark":
            await emit({"bytes": counted[0], "t": time.time()})
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(e.ws.close() for e in edges if e.ws is not None), return_exceptions=True)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    from runtime.cloud.status import read

    for _ in range(50):
        s = await asyncio.to_thread(read, root / "run" / "kedge" / "cloud.sock", 10.0)
        if s is not None:
            return s
        await asyncio.sleep(0.2)
    raise SystemExit("cloud status socket does not answer")


async def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from runtime.kube.client import make_client
    from runtime.kube.errors import AlreadyExists
    from runtime.kube.resources import CRDS, NAMESPACES, PODS, load_yaml
    from runtime.pki import certs
    from runtime.pki.store import PKIStore
    from runtime.templates import templates_dir

    kedge_cmd = [sys.executable, "-m", "kubeedge_cli.entry"]
    procs: list[subprocess.Popen[bytes]] = []
    data = work / f"api-{mode}"
    data.mkdir()
    api = start_proc([*kedge_cmd, "apiserver", "--data-dir", str(data), "--port", "0", "--in-memory",
                      "--watch-history", "200000"], work / f"api-{mode}.log")
    procs.append(api)
    try:
        kubeconfig = data / "admin.kubeconfig"
        wait_file(kubeconfig, api, 60, "apiserver")
        client = make_client(kubeconfig)
        try:
            await client.create(NAMESPACES, {"metadata": {"name": "kubeedge"}})
        except AlreadyExists:
            pass
        crd = templates_dir() / "crds" / "reliablesyncs.kubeedge.io_objectsyncs.yaml"
        for doc in load_yaml(crd.read_text()):
            await client.create(CRDS, doc)
        root = work / f"cloud-{mode}"
        sets = ["hub.websocket_port=0", "hub.cert_port=0", "hub.bind=127.0.0.1",
                "metrics_address=127.0.0.1:0", "log_level=warning"]
        cloud = start_proc([*kedge_cmd, "cloud", "run", "--kubeconfig", str(kubeconfig), "--root", str(root),
                            *[a for s in sets for a in ("--set", s)]], work / f"cloud-{mode}.log")
        procs.append(cloud)
        addresses = root / "var" / "lib" / "kedge" / "cloud" / "addresses.json"
        for _ in range(600):
            if addresses.exists() and "hub" in json.loads(addresses.read_text()):
                break
            if cloud.poll() is not None:
                raise SystemExit("cloud exited; see " + str(work / f"cloud-{mode}.log"))
            await asyncio.sleep(0.1)
        server = json.loads(addresses.read_text())["hub"]
        # certificates: one key, a node certificate per edge, signed by the cluster's CA
        ca = await PKIStore(client).load_ca()
        assert ca is not None
        cert_dir = work / f"certs-{mode}"
        cert_dir.mkdir()
        key = certs.new_key()
        (cert_dir / "key.pem").write_bytes(certs.key_pem(key))
        (cert_dir / "ca.pem").write_bytes(certs.cert_pem(ca.cert))
        for i in range(args.edges):
            node = f"sim-{i:05d}"
            cert = ca.sign_node_csr(certs.make_csr(key, node), node, days=1)
            (cert_dir / f"{node}.pem").write_bytes(certs.cert_pem(cert))
        await asyncio.sleep(2)
        rss0, cpu0 = proc_stat(cloud.pid)
        # simulators
        per = -(-args.edges // args.procs)
        sims = []
        t_start = time.time()
        for p in range(args.procs):
            first, count = p * per, max(0, min(per, args.edges - p * per))
            sims.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--sim", "--server", server, "--certs", str(cert_dir),
                "--mode", mode, "--first", str(first), "--count", str(count),
                "--concurrency", str(args.concurrency),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20))
        lines: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()

        async def pump(i: int, s: Any) -> None:
            while True:
                raw = await s.stdout.readline()
                if not raw:
                    return
                await lines.put((i, json.loads(raw)))

        pumps = [asyncio.create_task(pump(i, s)) for i, s in enumerate(sims)]
        ready = 0
        while ready < len(sims):
            _, msg = await asyncio.wait_for(lines.get(), 3600)
            ready += bool(msg.get("ready"))
        connect_s = time.time() - t_start
        # settle: registration writes, Node updates sent down and their acks persisted
        await asyncio.sleep(max(10.0, connect_s / 2))
        for _ in range(120):
            st = await status(root)
            if st["pendingAcks"] == 0 and st["ackStateBacklog"] == 0:
                break
            await asyncio.sleep(1)
        rss1, _ = proc_stat(cloud.pid)

        async def mark() -> tuple[int, float]:
            for s in sims:
                assert s.stdin is not None
                s.stdin.write(b"mark\n")
            total, got, t = 0, 0, 0.0
            while got < len(sims):
                _, msg = await lines.get()
                if "bytes" in msg:
                    total += msg["bytes"]
                    t = max(t, msg["t"])
                    got += 1
            return total, t

        st0 = await status(root)
        _, cpu_a = proc_stat(cloud.pid)
        b0, tb0 = await mark()
        await asyncio.sleep(args.idle)
        b1, tb1 = await mark()
        _, cpu_b = proc_stat(cloud.pid)
        st1 = await status(root)
        window = tb1 - tb0
        writes = st1["counters"]["apiWrites"] - st0["counters"]["apiWrites"]
        rss2, _ = proc_stat(cloud.pid)
        # fan-out: pods on distinct edges
        created: dict[str, float] = {}
        sample = min(args.pods, args.edges)
        for i in range(sample):
            name = f"fan-{i}"
            created[name] = time.time()
            node = f"sim-{(i * max(1, args.edges // sample)) % args.edges:05d}"
            spec = {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}
            await client.create(PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": spec})
        latencies: list[float] = []
        end = time.monotonic() + 120
        while len(latencies) < sample and time.monotonic() < end:
            try:
                _, msg = await asyncio.wait_for(lines.get(), max(0.1, end - time.monotonic()))
            except TimeoutError:
                break
            if msg.get("pod") in created:
                latencies.append(msg["t"] - created.pop(msg["pod"]))
        latencies.sort()
        for s in sims:
            assert s.stdin is not None
            s.stdin.write(b"quit\n")
        await asyncio.gather(*(asyncio.wait_for(s.wait(), 60) for s in sims), return_exceptions=True)
        for t in pumps:
            t.cancel()
        await client.close()
        per_edge_min = (b1 - b0) / max(1, args.edges) / window * 60
        return {
            "mode": mode, "edges": args.edges, "sim_procs": args.procs,
            "connect_seconds": round(connect_s, 1),
            "cloud_rss_mb": round(rss2 / 2**20, 1), "cloud_rss_baseline_mb": round(rss0 / 2**20, 1),
            "cloud_rss_kb_per_edge": round((rss1 - rss0) / 1024 / max(1, args.edges), 1),
            "cloud_cpu_idle_pct": round(100 * (cpu_b - cpu_a) / window, 1),
            "cloud_cpu_connect_s": round(cpu_a - cpu0, 1),
            "api_writes_per_s": round(writes / window, 1),
            "idle_bytes_per_edge_per_min": round(per_edge_min),
            "idle_kbit_s_per_edge": round(per_edge_min * 8 / 60 / 1000, 3),
            "fanout_pods": len(latencies), "fanout_p50_ms": _pct(latencies, 50),
            "fanout_p99_ms": _pct(latencies, 99),
            "idle_window_s": round(window, 1),
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--mode", choices=["kedge", "kubeedge", "both"], default="both")
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--server", help=argparse.SUPPRESS)
    ap.add_argument("--certs", help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import uvloop

    uvloop.run(sim(args) if args.sim else driver(args))


if __name__ == "__main__":
    main()
