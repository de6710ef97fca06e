"""Every on-disk path kedge uses, derived from one root (design.md §3).

One file per role so that a cloud and an edge (and an embedded API server) can share a machine, and
tests can run many instances side by side, each under its own temporary root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["cloud", "edge", "apiserver"]


@dataclass(frozen=True)
class Paths:
    root: Path
    role: Role

    @classmethod
    def of(cls, root: Path | str, role: Role) -> Paths:
        return cls(Path(root), role)

    def _p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def etc(self) -> Path:
        return self._p("etc", "kedge")

    @property
    def config_file(self) -> Path:
        """/etc/kedge/cloud.toml or edge.toml (the apiserver has no config file)."""
        return self.etc / f"{self.role}.toml"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.etc / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.etc / "pki" / self.role

    @property
    def state(self) -> Path:
        return self._p("var", "lib", "kedge", self.role)

    @property
    def log_file(self) -> Path:
        return self._p("var", "log", "kedge", f"{self.role}.log")

    @property
    def pid_file(self) -> Path:
        return self._p("run", "kedge", f"{self.role}.pid")

    @property
    def status_socket(self) -> Path:
        """Local health endpoint of a running role (0600 unix socket)."""
        return self._p("run", "kedge", f"{self.role}.sock")

    def installed(self) -> bool:
        """A role counts as installed when its config, keys, state or pid file exists under the root."""
        return any(p.exists() for p in (self.config_file, self.pki, self.state, self.pid_file))
