#!/usr/bin/env python3
"""Benchmark the embedded API server; prints one JSON line (figures + machine facts).

    .venv/bin/python scripts/bench/apiserver.py [--pods 10000] [--watchers 200] [--updates 1000]

Measures, against a `kedge apiserver` subprocess on a sqlite data dir (durable mode):
- creates_per_s: sequential pod creates over one keep-alive HTTPS connection, bodies encoded before
  the clock starts; the client is a minimal keep-alive HTTP/1.1 client (RawClient; `--client
  http.client` for the standard library's), because in a sequential loop the client's own CPU is
  paid in series with the server's. server_cpu_ms_per_create (the server process's user+system
  time over the loop) and client_cpu_ms_per_create are reported beside it;
  `--creates-only` stops there (profiling; `--kind configmap` creates ConfigMaps instead),
  `--in-memory` runs the server without sqlite;
- list_10k_ms: median time to GET the list of all pods (full body read);
- rss_mb_at_pods: server RSS with those pods stored;
- watch fan-out: N watchers on one namespace (in 2 client processes), U sequential ConfigMap updates;
  delivery latency = event received by a watcher - update request sent; p50/p99 over all deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import platform
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RV_RE = re.compile(rb'"resourceVersion":"(\d+)"')
CONTENT_LENGTH_RE = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
JSON = "application/json"


def start_server(
    data_dir: Path, *, in_memory: bool = False
) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    cmd = [
        sys.executable,
        "-m",
        "kubeedge_cli",
        "apiserver",
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        "--no-controllers",
        *(["--in-memory"] if in_memory else []),
    ]  # the raw server: no scheduler reacting to 10,000 unschedulable pods
    log = (data_dir.parent / "apiserver.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    kc = data_dir / "admin.kubeconfig"
    deadline = time.monotonic() + 30
    while not kc.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("apiserver did not start")
        time.sleep(0.05)
    doc = yaml.safe_load(kc.read_text())
    server = doc["clusters"][0]["cluster"]["server"]
    token = doc["users"][0]["user"]["token"]
    ca = data_dir / "pki" / "ca.crt"
    return proc, server, token, ca


def conn(server: str, ca: Path) -> http.client.HTTPSConnection:
    host, port = server.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca))
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)


def call(
    c: http.client.HTTPSConnection, token: str, method: str, path: str, body: Any = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i:05d}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ]
        },
    }


def configmap(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "data": {"config.yaml": "key: value\n" * 8, "mode": "fast"},
    }


def cpu_s(pid: int) -> float:
    """user+system CPU seconds of a process (its own threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- watchers (child processes) ---------------------------------------------------------------------
def watcher_main(
    server: str, token: str, ca: str, n: int, ns: str, rv: str, expect: int, q: Any, ready: Any
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_watchers(server, token, ca, n, ns, rv, expect, q, ready))


async def _watchers(
    server: str, token: str, ca: str, n: int, ns: str, rv: str, expect: int, q: Any, ready: Any
) -> None:
    """n raw watch connections (asyncio protocols, no HTTP client library: the client must stay cheap)."""
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context(cafile=ca)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    received: list[tuple[int, float]] = []
    done = loop.create_future()
    finished = 0
    request = (
        f"GET /api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=600 "
        f"HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()

    class Watch(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.got = 0

        def connection_made(self, transport: Any) -> None:
            transport.write(request)

        def data_received(self, data: bytes) -> None:
            nonlocal finished
            now = time.time()
            self.buf += data
            cut = self.buf.rfind(b"\n")
            if cut < 0:
                return
            lines, self.buf = self.buf[:cut], self.buf[cut + 1 :]
            for m in RV_RE.finditer(lines):
                received.append((int(m.group(1)), now))
                self.got += 1
            if self.got >= expect and self.got - len(RV_RE.findall(lines)) < expect:
                finished += 1
                if finished == n and not done.done():
                    done.set_result(None)

    conns = [
        await loop.create_connection(Watch, host, int(port), ssl=ctx, server_hostname=host) for _ in range(n)
    ]
    await asyncio.sleep(0.5)
    ready.set()
    await asyncio.wait_for(done, timeout=600)
    for t, _ in conns:
        t.close()
    q.put(received)


def fanout(server: str, token: str, ca: Path, watchers: int, updates: int, pid: int) -> dict[str, float]:
    c = conn(server, ca)
    call(c, token, "POST", "/api/v1/namespaces", {"metadata": {"name": "fan"}})
    _, body = call(
        c,
        token,
        "POST",
        "/api/v1/namespaces/fan/configmaps",
        {"metadata": {"name": "hot"}, "data": {"v": "0"}},
    )
    obj = json.loads(body)
    rv = obj["metadata"]["resourceVersion"]
    q: Any = mp.Queue()
    procs, readies = [], []
    per = [watchers // 2, watchers - watchers // 2]
    for n in per:
        ready = mp.Event()
        p = mp.Process(target=watcher_main, args=(server, token, str(ca), n, "fan", rv, updates, q, ready))
        p.start()
        procs.append(p)
        readies.append(ready)
    for r in readies:
        r.wait(60)
    time.sleep(1.0)
    sent: dict[int, float] = {}
    c0 = cpu_s(pid)
    for i in range(updates):
        t = time.time()
        c.request(
            "PATCH",
            "/api/v1/namespaces/fan/configmaps/hot",
            body=json.dumps({"data": {"v": str(i + 1)}}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
        )
        r = c.getresponse()
        out = r.read()
        sent[int(json.loads(out)["metadata"]["resourceVersion"])] = t
    results: list[tuple[int, float]] = []
    for _ in procs:
        results += q.get(timeout=300)
    fan_cpu = cpu_s(pid) - c0
    for p in procs:
        p.join(30)
    lat = sorted((recv - sent[rv_]) * 1000 for rv_, recv in results if rv_ in sent)
    return {
        "watch_deliveries": len(lat),
        "watch_p50_ms": round(statistics.median(lat), 2),
        "watch_p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
        "watch_max_ms": round(lat[-1], 2),
        "server_cpu_ms_per_update_fanout": round(fan_cpu / updates * 1000, 2),
    }


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_1m_at_end": os.getloadavg()[0],
    }


class RawClient:
    """A minimal HTTP/1.1 keep-alive client over one TLS socket: one prebuilt request per send, the
    response read by Content-Length. http.client spends ≈ 0.2 ms of Python per request (header
    formatting, email-based response parsing), paid in series with the server in a sequential loop;
    this one ≈ a quarter of that, so creates/s says more about the server (both are reported)."""

    def __init__(self, server: str, ca: Path, token: str) -> None:
        host, port = server.removeprefix("https://").rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=str(ca))
        self.sock = ctx.wrap_socket(
            socket.create_connection((host, int(port)), timeout=60), server_hostname=host
        )
        self.prefix = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self.buf = b""

    def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.prefix
        self.sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        m = CONTENT_LENGTH_RE.search(head)
        if m is None:
            raise RuntimeError(f"no Content-Length in {head[:200]!r}")
        size = int(m.group(1))
        while len(self.buf) < size:
            self._recv()
        out, self.buf = self.buf[:size], self.buf[size:]
        return int(head[9:12]), out

    def _recv(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data


def creates(
    server: str, ca: Path, token: str, n: int, pid: int, client: str, kind: str = "pod"
) -> dict[str, Any]:
    """n sequential pod (or ConfigMap) creates; the bodies are encoded before the clock starts (client
    work, not server)."""
    make = configmap if kind == "configmap" else pod
    bodies = [json.dumps(make(i)).encode() for i in range(n)]
    path = f"/api/v1/namespaces/bench/{kind}s"
    if client == "raw":
        raw = RawClient(server, ca, token)

        def send(b: bytes) -> int:
            return raw.request("POST", path, b)[0]

    else:
        c = conn(server, ca)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": JSON}

        def send(b: bytes) -> int:
            c.request("POST", path, body=b, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status

    c0, my0 = cpu_s(pid), time.process_time()
    t0 = time.perf_counter()
    for b in bodies:
        st = send(b)
        assert st == 201, st
    wall = time.perf_counter() - t0
    cpu, mine = cpu_s(pid) - c0, time.process_time() - my0
    return {
        "creates_per_s": round(n / wall, 1),
        "server_cpu_ms_per_create": round(cpu / n * 1000, 3),
        "client_cpu_ms_per_create": round(mine / n * 1000, 3),
        "create_client": client,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--watchers", type=int, default=200)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--creates-only", action="store_true", help="stop after the create phase (profiling)")
    ap.add_argument("--kind", choices=["pod", "configmap"], default="pod", help="what --creates-only creates")
    ap.add_argument("--in-memory", action="store_true", help="server without sqlite (to compare)")
    ap.add_argument(
        "--client", choices=["raw", "http.client"], default="raw", help="client of the create loop"
    )
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, server, token, ca = start_server(data, in_memory=args.in_memory)
        try:
            c = conn(server, ca)
            call(c, token, "POST", "/api/v1/namespaces", {"metadata": {"name": "bench"}})
            out: dict[str, Any] = {"bench": "apiserver", "pods": args.pods}
            kind = args.kind if args.creates_only else "pod"
            out["kind"] = kind
            out.update(creates(server, ca, token, args.pods, proc.pid, args.client, kind))
            if not args.creates_only:
                c0 = cpu_s(proc.pid)
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    st, body = call(c, token, "GET", "/api/v1/namespaces/bench/pods")
                    times.append((time.perf_counter() - t) * 1000)
                    assert st == 200 and body.count(b'"kind":"Pod"') == args.pods
                list_cpu = (cpu_s(proc.pid) - c0) / 5
                out["list_ms"] = round(statistics.median(times), 1)
                out["server_cpu_ms_per_list"] = round(list_cpu * 1000, 1)
                out["list_bytes"] = len(body)
                out["rss_mb_at_pods"] = round(rss_mb(proc.pid), 1)
                out["watchers"] = args.watchers
                out["updates"] = args.updates
                out.update(fanout(server, token, ca, args.watchers, args.updates, proc.pid))
            else:
                out["rss_mb_at_pods"] = round(rss_mb(proc.pid), 1)
            out["storage"] = "in-memory" if args.in_memory else "sqlite WAL (synchronous=NORMAL)"
            out["machine"] = {**machine(), "loadavg_1m_at_start": load_start}
            print(json.dumps(out), flush=True)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)


if __name__ == "__main__":
    main()
