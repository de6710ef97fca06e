"""What `kedge join` was asked to do: the options, with the server address parsed once."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import UsageError

HUB_PORT = 10000
CERT_PORT = 10002


@dataclass
class JoinOptions:
    token: str
    server: str  # host[:port] of CloudHub
    root: Path = Path("/")
    cert_port: int = CERT_PORT
    node_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    with_edge_taint: bool = False
    mqtt: str = "embedded"  # embedded | external=URL | off
    sets: list[str] = field(default_factory=list)
    foreground: bool = False
    ignore: set[str] = field(default_factory=set)  # check names, or "all"
    docker_host: str = ""
    ready_timeout: float = 60.0

    def __post_init__(self) -> None:
        self.server = _strip_scheme(self.server)
        host, _, port = self.server.rpartition(":") if self.server.count(":") == 1 else ("", "", "")
        if not host:
            host, port = self.server.strip("[]"), str(HUB_PORT)
        if not port.isdigit():
            raise UsageError(f"--server {self.server!r}: expected HOST[:PORT]")
        self.host, self.hub_port = host, int(port)
        self.node_name = (self.node_name or socket.gethostname()).lower()
        if self.mqtt not in ("embedded", "off") and not self.mqtt.startswith("external="):
            raise UsageError(f"--mqtt {self.mqtt!r}: expected embedded, external=URL or off")

    @property
    def hub_addr(self) -> str:
        return f"{self.host}:{self.hub_port}"

    @property
    def cert_addr(self) -> str:
        return f"{self.host}:{self.cert_port}"


def _strip_scheme(server: str) -> str:
    """`https://h:p` and `wss://h:p[/]` mean h:p (the hub speaks TLS only); `http://`, `ws://` or any
    other scheme is a usage error."""
    scheme, sep, rest = server.partition("://")
    if not sep:
        return server
    if scheme.lower() not in ("https", "wss"):
        raise UsageError(
            f"--server {server!r}: the cloud hub speaks TLS only, {scheme}:// cannot reach it",
            hint="give HOST[:PORT] (CloudHub's port, 10000), e.g. --server 203.0.113.10:10000",
        )
    return rest.rstrip("/")
