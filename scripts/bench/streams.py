"""kubectl exec / logs / port-forward through kedge against Docker's own, side by side (issue 19).

One JSON line. Starts its own one-machine kedge (tests/fixtures/e2e.py: `kedge init --embedded`,
`kedge join`) unless --kubeconfig/--node name a cluster, then measures, interleaved in one run:

- exec: `kubectl exec POD -- true` and `docker exec CONTAINER true` (the same container), with the
  clients' own start-up measured beside them (`kubectl version --client`, `docker --version`) and
  subtracted: overhead = (kubectl exec - kubectl start-up) - (docker exec - docker start-up), p50/p99.
- logs: `kubectl logs -f` of a fresh container printing 100 MB while it reads, against `docker logs -f`
  of another printing the same, alternately (MB/s; the edge keeps 200 MiB log files, --log-mib).
- port-forward: a 100 MB file from busybox httpd through `kubectl port-forward`, against the same file
  fetched from the pod's address directly (MB/s).
- pod start (POST → Running+Ready in the API), median of --starts each, alternating without and with
  a `kubectl logs -f` of a container printing ~5 MB/s running (the rate the reader saw is printed,
  and what the printer prints as `docker logs -f` alone sees it), with the CPU of dockerd, the edge,
  the cloud, the API server and the reading kubectl per kind of run.

    .venv/bin/python scripts/bench/streams.py [--execs 40] [--starts 5] [--only pod_start,logs]
    # another checkout's kedge, e.g. main, for a before/after: run from there with PYTHONPATH=<it>
    (cd /work/other && PYTHONPATH=$PWD python /path/to/scripts/bench/streams.py --log-mib 0 ...)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import docker

from runtime.kube.client import make_client
from runtime.kube.resources import PODS

IMAGE = "kedge.local/busybox:1"
MB = 1_000_000


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def ms(x: float) -> float:
    return round(1000 * x, 1)


class Cluster:
    def __init__(self, kubeconfig: Path, node: str, procs: dict[str, int] | None = None) -> None:
        self.kubeconfig, self.node, self.procs = kubeconfig, node, procs or {}
        self.docker = docker.from_env(timeout=120)

    def kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]

    def run(self, cmd: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        return time.perf_counter() - start

    def pod(self, name: str, script: str) -> None:
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"nodeName": self.node, "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "app", "image": IMAGE,
                                        "command": ["sh", "-c", script]}]}}  # fmt: skip
        subprocess.run(self.kubectl("apply", "-f", "-"), input=json.dumps(doc), text=True, check=True,
                       capture_output=True)  # fmt: skip
        self.wait(lambda: self.get(name).get("status", {}).get("phase") == "Running", 120)

    def get(self, name: str) -> dict[str, Any]:
        out = subprocess.run(self.kubectl("get", "pod", name, "-o", "json"), capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def container(self, pod: str) -> str:
        filters = {
            "label": [f"io.kedge.node={self.node}", f"io.kedge.pod.name={pod}", "io.kedge.container.kind=app"]
        }
        return str(self.docker.containers.list(filters=filters)[0].id)

    @staticmethod
    def wait(check: Any, within: float) -> None:
        end = time.monotonic() + within
        while not check():
            if time.monotonic() > end:
                raise TimeoutError("waited too long")
            time.sleep(0.2)


def bench_exec(c: Cluster, n: int) -> dict[str, Any]:
    c.pod("bench-exec", "sleep 3600")
    cid = c.container("bench-exec")
    kinds: dict[str, list[float]] = {
        "kubectl_exec": [],
        "kubectl_start": [],
        "docker_exec": [],
        "docker_start": [],
    }
    cmds = {
        "kubectl_exec": c.kubectl("exec", "bench-exec", "--", "true"),
        "kubectl_start": c.kubectl("version", "--client"),
        "docker_exec": ["docker", "exec", cid, "true"],
        "docker_start": ["docker", "--version"],
    }
    for name in cmds:  # warm-up: caches, the first TLS handshakes
        c.run(cmds[name])
    for _ in range(n):
        for name, cmd in cmds.items():
            kinds[name].append(c.run(cmd))
    out: dict[str, Any] = {
        f"{k}_ms": {"p50": ms(pct(v, 50)), "p99": ms(pct(v, 99))} for k, v in kinds.items()
    }
    for p in (50, 99):
        net_k = pct(kinds["kubectl_exec"], p) - pct(kinds["kubectl_start"], p)
        net_d = pct(kinds["docker_exec"], p) - pct(kinds["docker_start"], p)
        out[f"overhead_p{p}_ms"] = ms(net_k - net_d)
    out["execs"] = n
    return out


def _read_all(cmd: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    proc.wait()
    return total, time.perf_counter() - start


def _follow_until(cmd: list[str], trigger: list[str], end: bytes) -> tuple[int, float]:
    """Bytes a follower (`logs -f`) reads from ``trigger`` until the line ``end``, and the seconds
    that took."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    time.sleep(1.5)  # the follower is attached before anything is printed
    subprocess.run(trigger, check=True, capture_output=True)
    start, total, tail = time.perf_counter(), 0, b""
    try:
        while chunk := os.read(proc.stdout.fileno(), 1 << 20):
            total += len(chunk)
            tail = (tail + chunk)[-64:]
            if end in tail:
                break
        return total, time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(10)


def bench_logs(c: Cluster, rounds: int) -> dict[str, Any]:
    """One real ~100 MB transfer per read: a fresh pod prints 100 MB (base64 lines of 76 characters)
    when told to (a file appears in it), while a `kubectl logs -f` or a `docker logs -f` of it reads
    from the start — alternately, ``rounds`` each, the same printer for both. The bench's edge keeps
    200 MiB per log file (--log-mib, edge.toml runtime.container_log_max_mib): with the default 10 MiB
    in 2 files a follower that falls 20 MB behind the printer loses lines, docker's own too."""
    script = (
        "while [ ! -f /go ]; do sleep 0.05; done; head -c 75000000 /dev/zero | base64; echo END; sleep 3600"
    )
    seen: dict[str, list[tuple[int, float]]] = {"kubectl": [], "docker": []}
    for r in range(rounds):
        for k in seen:
            name = f"bench-logs-{k}-{r}"
            c.pod(name, script)
            cid = c.container(name)
            cmd = c.kubectl("logs", "-f", name) if k == "kubectl" else ["docker", "logs", "-f", cid]
            seen[k].append(_follow_until(cmd, ["docker", "exec", cid, "touch", "/go"], b"END\n"))
            subprocess.run(c.kubectl("delete", "pod", name, "--wait=false"), capture_output=True)
    return {k: {"MB": [round(b / MB, 1) for b, _ in v], "MBps": [round(b / MB / t, 1) for b, t in v]}
            for k, v in seen.items()}  # fmt: skip


def _fetch(url: str) -> tuple[int, float]:
    start = time.perf_counter()
    total = 0
    with urllib.request.urlopen(url, timeout=300) as resp:
        while chunk := resp.read(1 << 20):
            total += len(chunk)
    return total, time.perf_counter() - start


def bench_port_forward(c: Cluster) -> dict[str, Any]:
    c.pod(
        "bench-web",
        "mkdir -p /www && head -c 100000000 /dev/urandom > /www/big && touch /ready && "
        "exec httpd -f -p 8080 -h /www",
    )
    c.wait(lambda: subprocess.run(c.kubectl("exec", "bench-web", "--", "ls", "/ready"),
                                  capture_output=True).returncode == 0, 60)  # fmt: skip
    time.sleep(0.5)  # httpd listening
    labels = [f"io.kedge.node={c.node}", "io.kedge.pod.name=bench-web", "io.kedge.container.kind=sandbox"]
    sandbox = c.docker.containers.list(filters={"label": labels})[0]
    ip = sandbox.attrs["NetworkSettings"]["IPAddress"]
    proc = subprocess.Popen(
        c.kubectl("port-forward", "pod/bench-web", ":8080"), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        size_f, took_f = _fetch(f"http://127.0.0.1:{port}/big")
        size_d, took_d = _fetch(f"http://{ip}:8080/big")
    finally:
        proc.terminate()
        proc.wait(10)
    return {"bytes": size_f, "port_forward_MBps": round(size_f / MB / took_f, 1),
            "direct_MBps": round(size_d / MB / took_d, 1), "same_bytes": size_f == size_d}  # fmt: skip


async def _start_one(kube: Any, node: str, name: str) -> float:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "app", "image": IMAGE,
                                     "command": ["sleep", "3600"]}]}}  # fmt: skip
    start = time.perf_counter()
    await kube.create(PODS, body, namespace="default")
    while True:
        pod = await kube.get(PODS, name, namespace="default")
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(x["type"] == "Ready" and x["status"] == "True" for x in conds):
            took = time.perf_counter() - start
            break
        await asyncio.sleep(0.02)
    await kube.delete(PODS, name, namespace="default")
    return took


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds per wall second of the cluster's processes (and a kubectl), summed over spans."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = procs
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def span(self, extra: dict[str, int] | None = None) -> Any:
        pids = {**self.procs, **(extra or {})}
        before, start = {k: _cpu_seconds(p) for k, p in pids.items()}, time.perf_counter()

        def end() -> None:
            for k, p in pids.items():
                self.used[k] = self.used.get(k, 0.0) + _cpu_seconds(p) - before[k]
            self.wall += time.perf_counter() - start

        return end

    def cores(self) -> dict[str, float]:
        return {k: round(v / max(self.wall, 1e-9), 3) for k, v in self.used.items()}


def _rate(cmd: list[str], seconds: float) -> float:
    """MB/s a follower reads in ``seconds``."""
    read = {"bytes": 0, "seconds": 0.0}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    counted = threading.Thread(target=_count, args=(proc, read), daemon=True)
    counted.start()
    time.sleep(seconds)
    proc.terminate()
    proc.wait(10)
    counted.join(5)
    return round(read["bytes"] / MB / max(read["seconds"], 1e-9), 2)


def bench_pod_start(c: Cluster, n: int, width: int = 99, tick_bytes: int = 500000) -> dict[str, Any]:
    """Pod start with a container printing ~5 MB/s (tick_bytes per 0.1 s sleep, width-character lines)
    running throughout; alternately without a reader and with `kubectl logs -f` streaming it (so the
    difference is the stream's cost, not the printing).
    What the printer really prints is measured first with `docker logs -f` alone; the CPU of dockerd,
    the edge, the cloud, the API server (and the reading kubectl) is summed over each kind of run."""
    c.pod(
        "bench-chatty",
        f"while true; do head -c {tick_bytes} /dev/zero | tr '\\0' x | fold -w {width}; sleep 0.1; done",
    )
    printed = _rate(["docker", "logs", "-f", "--tail=0", c.container("bench-chatty")], 5.0)
    kube = make_client(c.kubeconfig)
    loop = asyncio.new_event_loop()
    quiet: list[float] = []
    busy: list[float] = []
    cpu = {"quiet": CpuMeter(c.procs), "with_logs_f": CpuMeter(c.procs)}
    read = {"bytes": 0, "seconds": 0.0}
    try:
        for i in range(n):
            end = cpu["quiet"].span()
            time.sleep(1.0)  # as long as the reader runs before the pod, below
            quiet.append(
                loop.run_until_complete(_start_one(kube, c.node, f"bench-q-{i}-{uuid.uuid4().hex[:4]}"))
            )
            end()
            proc = subprocess.Popen(
                c.kubectl("logs", "-f", "--tail=0", "bench-chatty"), stdout=subprocess.PIPE
            )
            end = cpu["with_logs_f"].span({"kubectl": proc.pid})
            counted = threading.Thread(target=_count, args=(proc, read), daemon=True)
            counted.start()
            time.sleep(1.0)  # the stream is flowing before the pod is created
            busy.append(
                loop.run_until_complete(_start_one(kube, c.node, f"bench-b-{i}-{uuid.uuid4().hex[:4]}"))
            )
            end()
            proc.terminate()
            proc.wait(10)
            counted.join(5)
            time.sleep(1.0)
    finally:
        loop.run_until_complete(kube.close())
        loop.close()
    q, b = statistics.median(quiet), statistics.median(busy)
    return {"quiet_ms": ms(q), "with_logs_f_ms": ms(b), "ratio": round(b / q, 3), "runs": n,
            "quiet_all_ms": [ms(x) for x in quiet], "with_logs_f_all_ms": [ms(x) for x in busy],
            "printed_MBps_docker_logs_f": printed,
            "logs_f_MBps_seen": round(read["bytes"] / MB / max(read["seconds"], 1e-9), 2),
            "cpu_cores": {k: m.cores() for k, m in cpu.items()}}  # fmt: skip


def _count(proc: subprocess.Popen[bytes], into: dict[str, Any]) -> None:
    assert proc.stdout is not None
    start = time.perf_counter()
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        into["bytes"] += len(chunk)
    into["seconds"] += time.perf_counter() - start


def cluster_processes(cloud_root: Path, edge_pid: int | None) -> dict[str, int]:
    """dockerd, the edge runtime, `kedge cloud run` and the embedded API server of a started cluster."""
    procs = {"edge": edge_pid or 0}
    try:  # the engine's own pid file (pidof may name other processes called dockerd too)
        procs["dockerd"] = int(Path("/var/run/docker.pid").read_text())
    except (OSError, ValueError):
        out = subprocess.run(["pidof", "-s", "dockerd"], capture_output=True, text=True).stdout.split()
        procs["dockerd"] = int(out[0]) if out else 0
    found = subprocess.run(["pgrep", "-f", str(cloud_root)], capture_output=True, text=True).stdout
    for pid in found.split():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        if b"kubeedge_cli" in b" ".join(cmd) or Path(cmd[0].decode()).name == "kedge":
            procs["apiserver" if b"apiserver" in cmd else "cloud"] = int(pid)
    return {k: v for k, v in procs.items() if v}


def code_revision() -> str:
    """The commit of the kedge the cluster runs: PYTHONPATH's checkout when set (a before/after run
    against another worktree), else this one."""
    where = os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[2])
    out = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def kubectl_version() -> str:
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True)
    return str(json.loads(out.stdout)["clientVersion"]["gitVersion"]) if out.returncode == 0 else ""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--execs", type=int, default=40)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--kubeconfig", type=Path)
    ap.add_argument("--node")
    ap.add_argument("--only", default="exec,logs,port_forward,pod_start", help="parts, comma-separated")
    ap.add_argument("--log-mib", type=int, default=200,
                    help="the edge's runtime.container_log_max_mib (0: leave the default, 10)")  # fmt: skip
    ap.add_argument("--line-width", type=int, default=99,
                    help="characters per line the pod-start printer writes (~5 MB/s in all)")  # fmt: skip
    ap.add_argument("--tick-bytes", type=int, default=500000,
                    help="bytes the pod-start printer writes per 0.1 s sleep")  # fmt: skip
    args = ap.parse_args(argv)
    started, load = time.time(), os.getloadavg()[0]
    teardown = None
    procs: dict[str, int] = {}
    if args.kubeconfig:
        kubeconfig, node, how = args.kubeconfig, args.node, "existing cluster"
    else:
        from tests.fixtures.e2e import start_e2e

        join = ("--set", f"runtime.container_log_max_mib={args.log_mib}") if args.log_mib else ()
        tmp = Path(tempfile.mkdtemp(prefix="kedge-bench-streams-"))
        env, teardown = start_e2e(tmp, docker.from_env(), join_args=join)
        kubeconfig, node = env.cloud.kubeconfig, env.edge.node
        procs = cluster_processes(env.cloud.root, env.edge.pid())
        how = "kedge init --embedded + kedge join (tests/fixtures/e2e.py), this machine"
    try:
        c = Cluster(kubeconfig, node, procs)
        parts = {
            "exec": lambda: bench_exec(c, args.execs),
            "logs": lambda: bench_logs(c, 2),
            "port_forward": lambda: bench_port_forward(c),
            "pod_start": lambda: bench_pod_start(c, args.starts, args.line_width, args.tick_bytes),
        }
        figures = {k: parts[k]() for k in args.only.split(",")}
    finally:
        if teardown is not None:
            teardown()
    return {
        "bench": "streams",
        "setup": how,
        **figures,
        "kubectl": kubectl_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg": [load, os.getloadavg()[0]],  # 1-minute load at the start and at the end
        "python": platform.python_version(),
        "code": code_revision(),
        "wall_s": round(time.time() - started, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
