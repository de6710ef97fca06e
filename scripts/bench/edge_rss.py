"""Memory of an idle `kedge edge run`, 60 s after start, printed as one JSON line (target <= 40 MB).

VmRSS, anonymous RSS (RssAnon) and PSS (smaps_rollup) summed over every process of the runtime (the
process started by `kedge join` and its children — `dist/kedge` execs its unpacked build, one process;
a PyInstaller one-file build would add a bootloader parent and an unpacked _MEI* directory, counted too
when /tmp is tmpfs). The edge is joined to the test cloud of join_time.py, connected, idle, with no
pods; the pod manager is hosted as in production (`--no-pods` measures the runtime without it, for
comparison). `--pods N` first runs N pods on the edge (bound to it, busybox `sleep`) and measures once
all are Running (target <= 45 MB at 10 pods).

    .venv/bin/python scripts/bench/edge_rss.py [--settle 60] [--no-pods | --pods 10]

The real edgecore is measured beside it, at the same moment and the same way, when
KEDGE_BENCH_EDGECORE_PID names a running one (its process tree), with KEDGE_BENCH_EDGECORE_SETUP saying
how it runs (e.g. "v1.23, containerd, event bus off, 10 pods") so the ratio compares like with like.
Without it the output says the edgecore is absent and gives design.md §8's figures as a reference,
like for like (event bus off: 85 MiB idle, 92 MiB with 10 pods; 122 MB was with the event bus on).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts" / "bench"))

from join_time import cloud, join, machine_facts, reset  # noqa: E402

from tests.fixtures.procs import KEDGE  # noqa: E402


def children(pid: int) -> list[int]:
    out = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out += children(int(p.name))
    return out


def bootloader_of(pid: int) -> int:
    """A one-file PyInstaller binary runs as bootloader parent + Python child (same executable, same
    command line); count from the parent then."""
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        same = Path(f"/proc/{ppid}/cmdline").read_bytes() == Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError, ValueError):
        return pid
    return ppid if same else pid


def memory(pid: int) -> dict[str, int]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    kb = {k: int(status[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile") if k in status}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            kb["Pss"] = int(line.split()[1])
    return kb


def mei_kb() -> int:
    """Size of PyInstaller's unpacked _MEI* dirs when /tmp is tmpfs (they then live in RAM)."""
    mounts = Path("/proc/mounts").read_text().split("\n")
    if not any(f" {tempfile.gettempdir()} tmpfs" in m for m in mounts):
        return 0
    total = 0
    for d in Path(tempfile.gettempdir()).glob("_MEI*"):
        total += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    return total // 1024


def run_pods(kubeconfig: str, node: str, n: int, timeout: float = 120.0) -> None:
    """N pods bound to `node` (no scheduler needed), then wait until the API shows them all Running."""
    docs = [{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"rss-{i}", "namespace": "default", "labels": {"bench": "edge-rss"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                 "containers": [
            {"name": "app", "image": "kedge.local/busybox:1", "command": ["sleep", "36000"]}]},
    } for i in range(n)]  # fmt: skip
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    done = subprocess.run(
        [*kubectl, "apply", "-f", "-"], text=True, capture_output=True, input=yaml.safe_dump_all(docs)
    )
    if done.returncode != 0:
        sys.exit(f"kubectl apply failed: {done.stderr}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*kubectl, "get", "pods", "-l", "bench=edge-rss", "-o", "json"],
            text=True,
            check=True,
            capture_output=True,
        ).stdout
        if sum(p["status"].get("phase") == "Running" for p in json.loads(out)["items"]) == n:
            return
        time.sleep(0.5)
    sys.exit(f"{n} pods not Running on {node} within {timeout:.0f} s")


def tree_memory(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and Pss (kB) summed over `pid` and its descendants."""
    per = [memory(x) for x in children(pid)]
    return {k: sum(m.get(k, 0) for m in per) for k in ("VmRSS", "RssAnon", "Pss")}


def edgecore_figures(kedge_pss_kb: int, pods: int) -> dict[str, object]:
    """The real edgecore measured now, or why it is not (with design.md §8's reference, not measured here)."""
    pid = os.environ.get("KEDGE_BENCH_EDGECORE_PID", "")
    if not pid:
        return {
            "edgecore": "absent: set KEDGE_BENCH_EDGECORE_PID (and _SETUP) to measure a running edgecore",
            "edgecore_reference": {
                "rss_mib": 92 if pods else 85,
                "setup": f"v1.23, event bus off, {'10 pods' if pods else 'idle'} (design.md §8; 122 MB with"
                " the event bus on) — measured elsewhere, not in this run",
            },
        }
    t = tree_memory(int(pid))
    return {
        "edgecore": os.environ.get("KEDGE_BENCH_EDGECORE_SETUP", "setup not stated"),
        "edgecore_vmrss_mb": round(t["VmRSS"] / 1024, 1),
        "edgecore_anon_mb": round(t["RssAnon"] / 1024, 1),
        "edgecore_pss_mb": round(t["Pss"] / 1024, 1),
        "ratio_pss_kedge_to_edgecore": round(kedge_pss_kb / max(1, t["Pss"]), 2),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--settle", type=float, default=60.0)
    p.add_argument("--no-pods", action="store_true")
    p.add_argument("--pods", type=int, default=0, help="run this many pods before measuring")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedge-rss-bench-") as tmp_s, cloud(Path(tmp_s)) as info:
        root = Path(tmp_s) / "edge"
        done = join(info, root, "bench-rss")
        if done.returncode != 0:
            sys.exit(f"join failed: {done.stderr[-2000:]}")
        pid = int((root / "run" / "kedge" / "edge.pid").read_text())
        # restart it as its service unit would (fresh process, clean environment), --no-pods if asked
        os.kill(pid, 15)
        while (root / "run" / "kedge" / "edge.pid").exists():
            time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("_PYI", "_MEI"))}
        log = (root / "var" / "log" / "kedge" / "edge.log").open("ab")
        flags = ["--no-pods"] if args.no_pods else []
        proc = subprocess.Popen(
            [*KEDGE, "edge", "run", "--root", str(root), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env, MALLOC_ARENA_MAX="2"),
        )
        pid_file = root / "run" / "kedge" / "edge.pid"
        while not pid_file.exists():
            time.sleep(0.1)
        pid = int(pid_file.read_text())
        if args.pods:
            run_pods(info["kubeconfig"], "bench-rss", args.pods)
        time.sleep(args.settle)
        pids = children(bootloader_of(pid))
        assert proc.poll() is None, "the runtime exited"
        per = {str(x): memory(x) for x in pids}
        total = {k: sum(m.get(k, 0) for m in per.values()) for k in ("VmRSS", "RssAnon", "Pss")}
        mei = mei_kb()
        edgecore = edgecore_figures(total["Pss"] + mei, args.pods)
        reset(root)
    print(
        json.dumps(
            {
                "benchmark": "edge_rss",
                "settle_s": args.settle,
                "pods_manager": not args.no_pods,
                "pods": args.pods,
                "processes": len(pids),
                "vmrss_mb": round(total["VmRSS"] / 1024, 1),
                "anon_mb": round(total["RssAnon"] / 1024, 1),
                "pss_mb": round((total["Pss"] + mei) / 1024, 1),
                "mei_tmpfs_mb": round(mei / 1024, 1),
                "target_mb": 45 if args.pods else 40,
                **edgecore,
                **machine_facts(),
            }
        )
    )


if __name__ == "__main__":
    main()
