"""Where the edge role keeps its files under ``--root`` (one place, so join, run, status and reset agree)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.fsutil import make_private
from runtime.paths import Paths


@dataclass(frozen=True)
class EdgeFiles:
    paths: Paths

    @classmethod
    def of(cls, root: Path | str) -> EdgeFiles:
        return cls(Paths.of(root, "edge"))

    def make_private(self) -> list[Path]:
        """etc/kedge, its pki/ and pki/edge/ (the node key, edge.toml) 0700, however they were made."""
        return make_private(self.paths.etc, self.paths.pki.parent, self.paths.pki)

    @property
    def ca(self) -> Path:
        return self.paths.pki / "ca.crt"  # PEM, pinned at join (hash checked against the token)

    @property
    def cert(self) -> Path:
        return self.paths.pki / "node.crt"

    @property
    def cert_facts(self) -> Path:
        """What the runtime needs of node.crt (node, notAfter), recorded when it is written (identity.py)."""
        return self.paths.pki / "node.crt.json"

    @property
    def key(self) -> Path:
        return self.paths.pki / "node.key"

    @property
    def outbox(self) -> Path:
        return self.paths.state / "outbox.db"

    @property
    def joined(self) -> Path:
        """Facts of the last successful join (server, node, time) as JSON; for status and reset."""
        return self.paths.state / "join.json"
