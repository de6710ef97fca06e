"""The tunnel DNAT rules (runtime/cloud/tunnel/dnat.py) for real, inside a network namespace of the test's
own: iptables (the machine's backend) through `ip netns exec`, a listener standing in for the stream
endpoint, and connections to an edge address's tunnel port that must land on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.cloud.tunnel import ports
from runtime.cloud.tunnel.dnat import CHAIN, DnatManager, Rule, rules_of, run_dnat
from tests.e2e.faults.netns import require_netns, sh
from tests.fixtures import find_binary, missing
from tests.fixtures.cloudctl import CloudEnv, prepare_cluster
from tests.fixtures.procs import KEDGE, start, stop
from tests.fixtures.wait import eventually_async

pytestmark = pytest.mark.root

LISTENER = """
import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
"""
DIAL = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(c.recv(100).decode(), flush=True)
"""


@dataclass
class Space:
    name: str
    prefix: str  # "10.X.Y": the namespace holds .1 on a veth; the rest of the /24 stands for edges

    def exec(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    @property
    def iptables(self) -> list[str]:
        return self.exec("iptables")

    def listener(self, says: str) -> tuple[subprocess.Popen[str], int]:
        """A stand-in stream endpoint on every address of the namespace; its port."""
        proc = subprocess.Popen(
            self.exec(sys.executable, "-c", LISTENER, says), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        return proc, int(proc.stdout.readline())

    def dial(self, address: str, port: int) -> str:
        """What a connection from inside the namespace (as kube-apiserver's) to address:port reads."""
        done = sh(*self.exec(sys.executable, "-c", DIAL, address, str(port)), check=False)
        return done.stdout.strip() if done.returncode == 0 else f"refused: {done.stderr.strip()[-80:]}"

    def chain(self) -> str:
        return sh(*self.exec("iptables", "-t", "nat", "-S"), check=False).stdout


@pytest.fixture
def space() -> Iterator[Space]:
    require_netns()
    if not find_binary("iptables") or not find_binary("iptables-restore"):
        missing("iptables not installed")
    sp = Space(f"kt-{uuid.uuid4().hex[:6]}", "10.77.0")
    sh("ip", "netns", "add", sp.name)
    try:
        sh(*sp.exec("ip", "link", "set", "lo", "up"))
        # a veth pair with both ends inside (no dummy module here): the "edges" subnet routes out of it
        sh(*sp.exec("ip", "link", "add", "edges0", "type", "veth", "peer", "name", "edges1"))
        sh(*sp.exec("ip", "addr", "add", f"{sp.prefix}.1/24", "dev", "edges0"))
        sh(*sp.exec("ip", "link", "set", "edges0", "up"))
        sh(*sp.exec("ip", "link", "set", "edges1", "up"))
        probe = sh(*sp.exec("iptables", "-t", "nat", "-S"), check=False)
        if probe.returncode != 0:
            missing(f"iptables nat table not usable in a namespace: {probe.stderr.strip()}")
        yield sp
    finally:
        sh("ip", "netns", "del", sp.name, check=False)


async def test_rules_send_the_tunnel_port_to_the_stream_endpoint_idempotently(space: Space) -> None:
    a, a_port = space.listener("replica-a")
    b, b_port = space.listener("replica-b")
    try:
        mgr = DnatManager(space.iptables)
        edge = f"{space.prefix}.42"  # an edge's InternalIP: nothing there, the rule takes the port over
        assert "refused" in await asyncio.to_thread(space.dial, edge, 10351)
        rules = [Rule(10351, f"{space.prefix}.1:{a_port}"), Rule(10352, f"{space.prefix}.1:{b_port}")]
        assert await mgr.apply(rules) is True
        assert await asyncio.to_thread(space.dial, edge, 10351) == "replica-a"
        assert await asyncio.to_thread(space.dial, f"{space.prefix}.43", 10352) == "replica-b"
        # a re-run changes nothing and duplicates nothing
        assert await mgr.apply(list(reversed(rules))) is False
        text = space.chain()
        assert text.count(f"-j {CHAIN}") == 2 and text.count("--dport 10351") == 1, text
        # one claim gone: its rule goes, the other stays
        assert await mgr.apply(rules[1:]) is True
        assert "refused" in await asyncio.to_thread(space.dial, edge, 10351)
        assert await asyncio.to_thread(space.dial, edge, 10352) == "replica-b"
        await mgr.remove()
        assert CHAIN not in space.chain()
        assert "refused" in await asyncio.to_thread(space.dial, edge, 10352)
        await mgr.remove()  # twice is fine
    finally:
        a.kill()
        b.kill()


async def test_the_daemon_follows_the_configmap_and_cleans_up(space: Space, cloudenv: CloudEnv) -> None:
    client = cloudenv.client
    await prepare_cluster(client)
    a, a_port = space.listener("replica-a")
    b, b_port = space.listener("replica-b")
    cloud_ip, edge = f"{space.prefix}.1", f"{space.prefix}.42"
    stop = asyncio.Event()
    mgr = DnatManager(space.iptables)
    task = asyncio.create_task(run_dnat(client, "kubeedge", mgr, stop, every=0.2))
    try:
        port = await ports.claim(client, "kubeedge", cloud_ip, a_port)

        async def reaches(says: str) -> bool:
            return await asyncio.to_thread(space.dial, edge, port) == says

        await eventually_async(lambda: reaches("replica-a"), what="the claim's rule installed")
        # the replica's stream endpoint moved (a restart on another port): the rule follows
        assert await ports.claim(client, "kubeedge", cloud_ip, b_port) == port
        await eventually_async(lambda: reaches("replica-b"), what="the rule reconciled")
        # released (kedge reset cloud): the rule goes
        await ports.release(client, "kubeedge", cloud_ip)
        await eventually_async(lambda: _refused(space, edge, port), what="the rule removed")
        await ports.claim(client, "kubeedge", cloud_ip, a_port)
        await eventually_async(lambda: reaches("replica-a"), what="claimed again")
        stop.set()
        await asyncio.wait_for(task, 10)
        assert CHAIN not in space.chain()
        assert "refused" in await asyncio.to_thread(space.dial, edge, port)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        a.kill()
        b.kill()


async def _refused(space: Space, edge: str, port: int) -> bool:
    return "refused" in await asyncio.to_thread(space.dial, edge, port)


def test_claims_without_a_stream_port_use_the_default_or_get_no_rule() -> None:
    rec = ports.Record(tunnel={"10.0.0.1": 10351, "10.0.0.2": 10352, "fd00::3": 10353},
                       stream={"10.0.0.1": 40001})  # fmt: skip
    assert rules_of(rec) == [Rule(10351, "10.0.0.1:40001")]
    assert rules_of(rec, 10003) == [
        Rule(10351, "10.0.0.1:40001"), Rule(10352, "10.0.0.2:10003"), Rule(10353, "[fd00::3]:10003")
    ]  # fmt: skip


async def test_kedge_cloud_tunnel_dnat_keeps_the_rules_until_sigterm(
    space: Space, cloudenv: CloudEnv, tmp_path: Path
) -> None:
    client = cloudenv.client
    await prepare_cluster(client)
    a, a_port = space.listener("replica-a")
    port = await ports.claim(client, "kubeedge", f"{space.prefix}.1", a_port)
    cmd = [*KEDGE, "cloud", "tunnel-dnat", "--kubeconfig", str(cloudenv.cp.kubeconfig), "--every", "0.2",
           "--iptables", " ".join(space.iptables)]  # fmt: skip
    proc = start(cmd, tmp_path / "dnat.log")
    try:

        async def reaches() -> bool:
            return await asyncio.to_thread(space.dial, f"{space.prefix}.9", port) == "replica-a"

        await eventually_async(
            reaches, 30, what="the process's rule installed", proc=proc, log=tmp_path / "dnat.log"
        )
        assert stop(proc) == 0
        assert CHAIN not in space.chain()
    finally:
        stop(proc)
        a.kill()


class Counting(DnatManager):
    """An iptables that always fails (`false`), counting the attempts."""

    def __init__(self) -> None:
        super().__init__(["false"])
        self.runs = 0

    async def _run(self, cmd: list[str], stdin: str | None = None, check: bool = True) -> tuple[int, str]:
        self.runs += 1
        return await super()._run(cmd, stdin, check)


async def test_a_failing_iptables_run_is_retried_not_fatal(cloudenv: CloudEnv) -> None:
    """A busy xtables lock or a child killed with the process group (SIGTERM to the group) must not end
    the daemon: the round is logged and tried again, and the stop still cleans up."""
    mgr, stop = Counting(), asyncio.Event()
    task = asyncio.create_task(run_dnat(cloudenv.client, "kubeedge", mgr, stop, every=0.05))
    await eventually_async(lambda: mgr.runs >= 6 or task.done(), what="several failed rounds")
    assert not task.done(), task.exception()
    stop.set()
    await asyncio.wait_for(task, 10)  # no exception: the rounds failed, the daemon did not
