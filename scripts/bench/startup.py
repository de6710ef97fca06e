"""Start-up time of short kedge commands, printed as one JSON line (issue 14; target: `kedge status -o json`
from the executable, warm, median of 10 <= 300 ms; from the source tree <= 250 ms).

Each form runs the same commands, interleaved round by round (so a noisy machine loads every form
alike), after one warm-up call each (the executable's first call unpacks it). Wall-clock and CPU
(user+sys of the child) medians per form and command, and the load average, are reported.

    .venv/bin/python scripts/bench/startup.py [--runs 10] [--form source] [--form bin=dist/kedge] ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMMANDS = {
    "status -o json": ["-o", "json", "status"],
    "version": ["version"],
    "--help": ["--help"],
}


def forms(specs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs or ["source"]:
        if spec == "source":
            out["source"] = [sys.executable, "-m", "kubeedge_cli"]
        else:
            name, _, cmd = spec.partition("=")
            out[name] = shlex.split(cmd)
    return out


def timed(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument(
        "--form", action="append", default=[], help="source, or NAME=COMMAND (e.g. bin=dist/kedge)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedge-startup-") as tmp:
        root = ["--root", tmp]  # an empty root: status answers "no role installed" after parsing it all
        runs = {name: [*cmd] for name, cmd in forms(args.form).items()}
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {
            f: {c: [] for c in COMMANDS} for f in runs
        }
        for cmd in runs.values():
            timed([*cmd, *root, "version"])  # warm-up: page cache, and the executable's one unpack
        load_start = os.getloadavg()[0]
        for _ in range(args.runs):
            for form, cmd in runs.items():
                for name, words in COMMANDS.items():
                    extra = root if name != "--help" else []
                    samples[form][name].append(timed([*cmd, *extra, *words]))
        result: dict[str, Any] = {"bench": "startup", "runs": args.runs}
        for form, per in samples.items():
            result[form] = {
                name: {
                    "wall_ms_median": round(statistics.median(w for w, _ in s) * 1000, 1),
                    "cpu_ms_median": round(statistics.median(c for _, c in s) * 1000, 1),
                }
                for name, s in per.items()
            }
        result["machine"] = {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_1m_at_start": round(load_start, 2),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
