"""DMI at the edge: 100 virtual devices behind one gRPC mapper reporting at 10 Hz each (1000 reports/s).

Starts the real cloud (join_time.py's: `kedge apiserver` + `kedge cloud run`), installs KubeEdge's
Device CRDs, joins an edge (`--no-pods`: the device path only), creates one DeviceModel and 100
Devices of protocol ``bench``, then measures side by side in one run:
- the edge with DMI off: RSS and CPU idle with 100 devices known, and CPU while 100 MQTT devices
  report 1000 updates/s (scripts/bench/_simdevices.py) — the same load over the existing path;
- the edge with DMI on (restarted with ``dmi.enabled``), no mapper yet: RSS and CPU idle (socket
  bound, gRPC not loaded: runtime/edge/devices/dmi/gate.py);
- then ``--rounds`` rounds, each with the edge's own DMI server (grpclib) and with a grpcio-served
  one (scripts/bench/_grpcio_edge.py: the same edge and handlers, only the gRPC library swapped —
  bench-only, from source even when KEDGE_BIN is the executable): restarted, idle RSS/CPU (the cache
  now names the mapper, so gRPC is loaded at start), then one mapper (scripts/bench/_dmimapper.py)
  sending ``ReportDeviceStatus`` for the 100 devices at 10 Hz: each call's round trip (answered after
  the twin store's commit) p50/p99, the achieved rate, failures by status code, the edge's CPU and
  RSS meanwhile. Medians over the rounds per server, and their ratio, are in ``summary``.
  ``--before DIR`` adds a third server, ``before``: the edge of another checkout (e.g. a worktree of
  main before a change, from source) in the same rounds, so a change is measured side by side.
Prints one JSON line with machine facts (the machine is shared: compare the side-by-side figures).

    .venv/bin/python scripts/bench/dmi.py [--seconds 20] [--rounds 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts" / "bench"))

from edge_rss import children  # noqa: E402
from join_time import cloud, machine_facts, reset  # noqa: E402
from twin import device_edge, edge_pid, kubectl, objects, restart_edge, rss_mb, status, wait  # noqa: E402

from tests.fixtures.procs import KEDGE  # noqa: E402

NODE, N, HZ = "bench-dmi", 100, 10.0


def cpu_seconds(root: Path) -> float:
    ticks = 0
    for pid in children(edge_pid(root)):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Edge CPU (% of one core) and peak RSS while something runs."""

    def __init__(self, root: Path) -> None:
        self.root, self.peak, self.done = root, 0.0, threading.Event()
        self.cpu0, self.t0 = cpu_seconds(root), time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(1.0):
            self.peak = max(self.peak, rss_mb(self.root))

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.thread.join()
        cpu = (cpu_seconds(self.root) - self.cpu0) / (time.monotonic() - self.t0) * 100
        return {
            "edge_cpu_pct": round(cpu, 1),
            "edge_rss_peak_mb": self.peak,
            "edge_rss_after_mb": rss_mb(self.root),
        }


def idle(root: Path, seconds: float = 10.0) -> dict[str, float]:
    s = Sampler(root)
    time.sleep(seconds)
    out = s.stop()
    return {"edge_rss_mb": out["edge_rss_after_mb"], "edge_cpu_pct": out["edge_cpu_pct"]}


def run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"{cmd[1]} failed: {done.stderr[-2000:]}")
    lines = [json.loads(x) for x in done.stdout.strip().splitlines() if x.strip()]
    return dict(next(x for x in reversed(lines) if "p50_ms" in x))


SERVERS = {"grpclib": KEDGE, "grpcio": [sys.executable, str(REPO / "scripts" / "bench" / "_grpcio_edge.py")]}
FIGURES = ("p50_ms", "p99_ms", "max_ms", "edge_cpu_pct", "edge_rss_peak_mb", "idle_rss_mb")


def dmi_load(root: Path, sock: Path, seconds: float) -> dict[str, Any]:
    s = Sampler(root)
    load = run_json([sys.executable, str(REPO / "scripts" / "bench" / "_dmimapper.py"), "--dmi", str(sock),
                     "--devices", str(N), "--hz", str(HZ), "--seconds", str(seconds)],
                    seconds + 120)  # fmt: skip
    out = {**s.stop(), **load}
    out["rate_limited"] = ((status(root).get("devices") or {}).get("dmi") or {}).get("rateLimited")
    return out


def summary(rounds: list[dict[str, Any]], servers: dict[str, list[str]]) -> dict[str, Any]:
    med: dict[str, dict[str, float]] = {}
    for name in servers:
        runs = [r[name] for r in rounds]
        med[name] = {f: round(statistics.median(float(r[f]) for r in runs), 2) for f in FIGURES}
    for a, b in (("grpclib", "grpcio"), ("grpclib", "before"), ("before", "grpcio")):
        if b in med:
            med[f"{a}_over_{b}"] = {f: round(med[a][f] / med[b][f], 2) for f in FIGURES if med[b][f]}
    return med


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", default="", help="another checkout whose edge runs as server 'before'")
    args = p.parse_args()
    servers = dict(SERVERS)
    if args.before:
        servers["before"] = ["env", f"PYTHONPATH={Path(args.before).resolve()}", sys.executable, "-P", "-m",
                             "kubeedge_cli"]  # fmt: skip
    out: dict[str, Any] = {"benchmark": "dmi", "devices": N, "hz": HZ, "kedge": " ".join(KEDGE),
                           "before": args.before}  # fmt: skip
    sock_dir = Path(tempfile.mkdtemp(prefix="kdmi-bench-", dir="/tmp"))
    sock = sock_dir / "dmi.sock"
    dmi_sets = ["mqtt.port=0", "dmi.enabled=true", f"dmi.socket={sock}"]
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kedge-dmi-bench-") as tmp_s, cloud(Path(tmp_s)) as info:
        tmp, kc = Path(tmp_s), info["kubeconfig"]
        root = device_edge(info, tmp / "edge", NODE)
        restart_edge(root, ["mqtt.port=0"])
        wait(lambda: (status(root).get("devices") or {}).get("broker"), 60, "embedded broker")
        kubectl(kc, "apply", "-f", "-", stdin=objects(N, protocol="bench", setpoint=False, node=NODE))
        wait(lambda: len((status(root).get("devices") or {}).get("devices") or []) == N, 120, f"{N} devices")
        time.sleep(3)
        out["dmi_off_idle"] = idle(root)
        port = int(status(root)["devices"]["broker"]["listeners"][0].rsplit(":", 1)[1])
        s = Sampler(root)
        bench = REPO / "scripts" / "bench"
        sim = run_json([sys.executable, str(bench / "_simdevices.py"), "--port", str(port),
                        "--devices", str(N), "--rates", str(int(N * HZ)), "--seconds", str(args.seconds)],
                       args.seconds + 120)  # fmt: skip
        out["mqtt_1000_per_s"] = {**s.stop(), "p50_ms": sim.get("p50_ms"), "p99_ms": sim.get("p99_ms"),
                                  "answered": sim.get("answered"), "sent": sim.get("updates"),
                                  "rate_per_s": sim.get("rate_sent")}  # fmt: skip

        def dmi_edge(kedge: list[str]) -> dict[str, Any]:
            restart_edge(root, dmi_sets, kedge)
            wait(
                lambda: ((status(root).get("devices") or {}).get("dmi") or {}).get("serving"),
                60,
                "DMI socket",
            )
            wait(
                lambda: len((status(root).get("devices") or {}).get("devices") or []) == N, 60, f"{N} devices"
            )
            time.sleep(3)
            st = (status(root).get("devices") or {}).get("dmi") or {}
            return {
                **idle(root),
                "grpc_loaded": st.get("grpcLoaded", True),
                "mappers": len(st.get("mappers") or []),
            }

        out["dmi_on_idle_no_mapper"] = dmi_edge(KEDGE)
        rounds: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            one: dict[str, Any] = {}
            for name, kedge in servers.items():
                before = dmi_edge(kedge)
                loads.append(os.getloadavg()[0])
                one[name] = {
                    **dmi_load(root, sock, args.seconds),
                    "idle_rss_mb": before["edge_rss_mb"],
                    "idle_cpu_pct": before["edge_cpu_pct"],
                    "idle_grpc_loaded": before["grpc_loaded"],
                }
            rounds.append(one)
        out["rounds"] = rounds
        out["summary"] = summary(rounds, servers)
        out["rate_limit"] = ((status(root).get("devices") or {}).get("dmi") or {}).get("rateLimit")
        reset(root)
    subprocess.run(["rm", "-rf", str(sock_dir)], check=False)
    out["loadavg_1m_during_loads"] = [round(x, 1) for x in loads]
    out.update(machine_facts())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
