"""Cumulative CPU time and memory working set of a container (its cgroup) and of the node.

What kubelet (cAdvisor) reports, from the same files: CPU as cumulative nanoseconds (cgroup v1
`cpuacct.usage`, v2 `cpu.stat` usage_usec), memory as the working set — usage minus inactive file
pages (v1 `memory.usage_in_bytes` - `total_inactive_file`, v2 `memory.current` - `inactive_file`),
never below 0. Docker puts a container's cgroup at `docker/<id>` (cgroupfs driver) or
`system.slice/docker-<id>.scope` (systemd driver); the directory found first is remembered per
container. The node: busy jiffies of /proc/stat's `cpu` line (user+nice+system+irq+softirq+steal) and
MemTotal - MemAvailable of /proc/meminfo. Every read here blocks: call it on a thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_V1_CPU = ("cpuacct", "cpu,cpuacct", "cpu")


@dataclass(frozen=True)
class Reading:
    cpu_ns: int  # cumulative CPU time, nanoseconds
    memory: int  # working set, bytes


def _int(path: Path) -> int:
    return int(path.read_text().split()[0])


def _stat(path: Path, *keys: str) -> int:
    """The first of `keys` found in a flat keyed file (memory.stat, cpu.stat); 0 when none is."""
    values = dict(line.split()[:2] for line in path.read_text().splitlines() if line.count(" ") >= 1)
    for k in keys:
        if k in values:
            return int(values[k])
    return 0


class CgroupReader:
    def __init__(self, root: Path | str = "/sys/fs/cgroup", proc: Path | str = "/proc") -> None:
        self.root, self.proc = Path(root), Path(proc)
        self.v2 = (self.root / "cgroup.controllers").exists()
        self._dirs: dict[str, tuple[Path, Path]] = {}  # container id -> (cpu dir, memory dir)
        self._tick_ns = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)

    def _subpaths(self, cid: str) -> tuple[str, str]:
        return f"docker/{cid}", f"system.slice/docker-{cid}.scope"

    def _find(self, cid: str) -> tuple[Path, Path] | None:
        found = self._dirs.get(cid)
        if found is not None:
            return found
        for sub in self._subpaths(cid):
            if self.v2:
                d = self.root / sub
                if (d / "cpu.stat").exists():
                    found = (d, d)
                    break
                continue
            cpu = next(
                (self.root / c / sub for c in _V1_CPU if (self.root / c / sub / "cpuacct.usage").exists()),
                None,
            )
            if cpu is not None:
                found = (cpu, self.root / "memory" / sub)
                break
        if found is not None:
            self._dirs[cid] = found
        return found

    def container(self, cid: str) -> Reading | None:
        """The container's reading; None when its cgroup is gone (it stopped) or was never found."""
        dirs = self._find(cid)
        if dirs is None:
            return None
        cpu_dir, mem_dir = dirs
        try:
            if self.v2:
                cpu = _stat(cpu_dir / "cpu.stat", "usage_usec") * 1000
                usage = _int(mem_dir / "memory.current")
                inactive = _stat(mem_dir / "memory.stat", "inactive_file")
            else:
                cpu = _int(cpu_dir / "cpuacct.usage")
                usage = _int(mem_dir / "memory.usage_in_bytes")
                inactive = _stat(mem_dir / "memory.stat", "total_inactive_file", "inactive_file")
        except (OSError, ValueError):
            self._dirs.pop(cid, None)
            return None
        return Reading(cpu, max(usage - inactive, 0))

    def node(self) -> Reading:
        with open(self.proc / "stat") as f:
            fields = f.readline().split()
        # cpu user nice system idle iowait irq softirq steal ...
        busy = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8) if i < len(fields))
        mem = {}
        with open(self.proc / "meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    mem[key] = int(rest.split()[0]) * 1024
        return Reading(busy * self._tick_ns, max(mem.get("MemTotal", 0) - mem.get("MemAvailable", 0), 0))

    def forget(self, keep: set[str]) -> None:
        """Drop remembered directories of containers no longer listed."""
        for cid in [c for c in self._dirs if c not in keep]:
            del self._dirs[cid]
