"""Network namespaces for the fault scenarios: each edge behind its own veth pair, cut with nftables.

    lab = Lab.create()                  # bridge kfb<id> with 10.X.Y.1/24, `unreachable 10.X.Y.0/24`
    ns = lab.add("e1")                  # netns kf-<id>-e1, veth kfh<id><n> (host) ↔ eth0 (10.X.Y.n)
    ns.partition(); ns.heal()           # nft drop on the edge's eth0 in both directions (a real cut)
    ns.loss(20)                         # nft `numgen random mod 100 < 20 drop`, both directions
    ns.redirect(host, 443, 8443)        # nft dnat: the edge's new connections to a proxy instead
    lab.destroy()                       # namespaces, veths, bridge and route removed

Rules live in the edge's own namespace (table `inet kedgefault`), so the host's firewall is never
touched and the host-side link stays up: its route never vanishes. The `unreachable` route for the
whole test subnet keeps traffic for it on this machine if the bridge route ever goes away. Names carry
a per-lab random id so parallel runs never collide.
"""

from __future__ import annotations

import random
import re
import subprocess
import uuid
from dataclasses import dataclass, field

from tests.fixtures import find_binary, missing


def sh(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, input=stdin, timeout=30)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def require_netns() -> None:
    """Skip with one line (fail under CI=true) unless namespaces, veths and nftables work here."""
    for tool in ("ip", "nft"):
        if not find_binary(tool):
            missing(f"network namespaces not available: {tool} not installed")
    probe = f"kfprobe-{uuid.uuid4().hex[:6]}"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        missing(f"network namespaces not available: ip netns add: {made.stderr.strip()}")
    try:
        nft = sh("ip", "netns", "exec", probe, "nft", "list", "tables", check=False)
        if nft.returncode != 0:
            missing(f"nftables not available in a namespace: {nft.stderr.strip()}")
    finally:
        sh("ip", "netns", "del", probe, check=False)


def _free_subnet() -> str:
    """A 10.2xx.y.0/24 no address or route on this machine uses yet ("10.2xx.y")."""
    used = sh("ip", "-4", "route", "show", "table", "all").stdout + sh("ip", "-4", "addr").stdout
    for _ in range(200):
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if f"{prefix}." not in used:
            return prefix
    raise AssertionError("no free 10.2xx.y.0/24 subnet for the fault lab")


RULES = """table inet kedgefault {{
  chain in {{
    type filter hook input priority -10; policy accept;
    iifname "eth0" {verdict}
  }}
  chain out {{
    type filter hook output priority -10; policy accept;
    oifname "eth0" {verdict}
  }}
}}
"""


@dataclass
class Netns:
    name: str
    address: str  # the edge's address inside its namespace
    host_veth: str

    def exec(self, *cmd: str) -> list[str]:
        """`cmd` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def _rules(self, verdict: str) -> None:
        self.heal()
        sh(*self.exec("nft", "-f", "-"), stdin=RULES.format(verdict=verdict))

    def partition(self) -> None:
        self._rules("counter drop")

    def loss(self, percent: int) -> None:
        self._rules(f"numgen random mod 100 < {percent} counter drop")

    def redirect(self, address: str, port: int, to_port: int) -> None:
        """New connections from here to address:port go to address:to_port instead (a proxy's port)."""
        rule = f"ip daddr {address} tcp dport {port} dnat to {address}:{to_port}"
        chain = f"chain out {{\n    type nat hook output priority -100; policy accept;\n    {rule}\n  }}"
        sh(*self.exec("nft", "-f", "-"), stdin=f"table ip kedgeredirect {{\n  {chain}\n}}\n")

    def heal(self) -> None:
        sh(*self.exec("nft", "delete", "table", "inet", "kedgefault"), check=False)

    def dropped(self) -> int:
        """Packets the current fault rules dropped so far (0 once healed)."""
        out = sh(*self.exec("nft", "list", "table", "inet", "kedgefault"), check=False).stdout
        return sum(int(n) for n in re.findall(r"packets (\d+)", out))


@dataclass
class Lab:
    id: str
    prefix: str  # "10.X.Y"
    bridge: str
    spaces: list[Netns] = field(default_factory=list)

    @property
    def host_address(self) -> str:
        """Where the edges reach the cloud (the bridge's address on the host)."""
        return f"{self.prefix}.1"

    @classmethod
    def create(cls) -> Lab:
        require_netns()
        ident = uuid.uuid4().hex[:6]
        lab = cls(ident, _free_subnet(), f"kfb{ident}")
        try:
            sh("ip", "route", "add", "unreachable", f"{lab.prefix}.0/24", "metric", "4000")
            sh("ip", "link", "add", lab.bridge, "type", "bridge")
            sh("ip", "addr", "add", f"{lab.host_address}/24", "dev", lab.bridge)
            sh("ip", "link", "set", lab.bridge, "up")
        except BaseException:
            lab.destroy()
            raise
        return lab

    def add(self, label: str) -> Netns:
        n = len(self.spaces) + 2
        ns = Netns(f"kf-{self.id}-{label}", f"{self.prefix}.{n}", f"kfh{self.id}{n}")
        self.spaces.append(ns)
        sh("ip", "netns", "add", ns.name)
        sh("ip", "link", "add", ns.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        sh("ip", "link", "set", ns.host_veth, "master", self.bridge, "up")
        sh(*ns.exec("ip", "addr", "add", f"{ns.address}/24", "dev", "eth0"))
        sh(*ns.exec("ip", "link", "set", "eth0", "up"))
        sh(*ns.exec("ip", "link", "set", "lo", "up"))
        return ns

    def destroy(self) -> None:
        for ns in self.spaces:
            sh("ip", "netns", "del", ns.name, check=False)  # takes its end of the veth pair with it
            sh("ip", "link", "del", ns.host_veth, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        sh("ip", "route", "del", "unreachable", f"{self.prefix}.0/24", "metric", "4000", check=False)
