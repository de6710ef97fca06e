"""The control-plane hosts' side of the dnat mode: nat rules from the ``tunnelport`` ConfigMap.

kube-apiserver dials <edge InternalIP>:<tunnel port> for an edge node's logs and exec; on the host it
runs on, a rule of ours sends that port to the replica that claimed it (ports.py), as KubeEdge's
iptables-manager does. The rules live in one chain of the nat table, jumped to from OUTPUT (the API
server's own connections: host network) and PREROUTING (connections routed through the host):

    -A KEDGE-TUNNEL-PORT -p tcp --dport <tunnel port> -j DNAT --to-destination <replica>:<stream port>

``DnatManager.apply`` makes the chain hold exactly the wanted rules (one ``iptables-restore --noflush``
that replaces the chain atomically, only when it differs; the jumps checked with ``-C`` first), so a
re-run changes nothing; ``remove`` takes the jumps and the chain away. ``run_dnat`` reconciles every
``every`` seconds from the ConfigMap and removes the rules when stopped; an unreadable ConfigMap (the
API away) keeps the rules in place, a failed iptables run is tried again next round. The iptables
command is a prefix the caller gives: the host's own binary through ``chroot /host iptables`` in the
DaemonSet (the same backend, legacy or nft, as kube-proxy's), ``ip netns exec NS iptables`` in the
tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.cloud.tunnel import ports
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient

log = logging.getLogger("kedge.cloud.tunnel.dnat")
CHAIN = "KEDGE-TUNNEL-PORT"
JUMP_COMMENT = "kedge tunnel ports"
HOOKS = ("OUTPUT", "PREROUTING")
_RULE = re.compile(r"--dport (\d+)\b.*--to-destination (\S+)")


@dataclass(frozen=True, order=True)
class Rule:
    port: int  # the tunnel port (a node's kubelet port)
    target: str  # "address:stream port" of the replica that claimed it

    def spec(self) -> str:
        return (
            f'-A {CHAIN} -p tcp -m tcp --dport {self.port} -m comment --comment "kedge tunnel" '
            f"-j DNAT --to-destination {self.target}"
        )


def rules_of(record: ports.Record, stream_port: int = 0) -> list[Rule]:
    """One rule per claim; a claim without a stream port (a KubeEdge cloudcore's) uses ``stream_port``,
    or gets none when that is 0."""
    out = []
    for address, port in record.tunnel.items():
        target = record.stream.get(address) or stream_port
        if target:
            host = f"[{address}]" if ":" in address else address
            out.append(Rule(port, f"{host}:{target}"))
    return sorted(out)


class IptablesError(KedgeError):
    pass


class DnatManager:
    """The chain and its jumps through one iptables command (``["iptables"]``, or a prefixed one)."""

    def __init__(self, iptables: Sequence[str] = ("iptables",)) -> None:
        if not iptables:
            raise KedgeError("an iptables command is needed")
        self.iptables = list(iptables)
        self.restore = [*self.iptables[:-1], self.iptables[-1] + "-restore"]
        self.changes = 0  # chain rewrites (re-runs that change nothing leave it)

    async def _run(self, cmd: list[str], stdin: str | None = None, check: bool = True) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        code = proc.returncode or 0
        if check and code != 0:
            raise IptablesError(f"{' '.join(cmd)} exited {code}: {err.decode(errors='replace').strip()}")
        return code, out.decode(errors="replace")

    async def nat(self, *args: str, check: bool = True) -> tuple[int, str]:
        return await self._run([*self.iptables, "-w", "5", "-t", "nat", *args], check=check)

    async def current(self) -> list[Rule] | None:
        """The rules the chain holds (None: no chain)."""
        code, out = await self.nat("-S", CHAIN, check=False)
        if code != 0:
            return None
        found = [_RULE.search(line) for line in out.splitlines() if line.startswith(f"-A {CHAIN} ")]
        return sorted(Rule(int(m.group(1)), m.group(2)) for m in found if m)

    async def _jumps(self) -> None:
        for hook in HOOKS:
            jump = [hook, "-m", "comment", "--comment", JUMP_COMMENT, "-j", CHAIN]
            if (await self.nat("-C", *jump, check=False))[0] != 0:
                await self.nat("-I", *jump)

    async def apply(self, rules: Sequence[Rule]) -> bool:
        """Make the chain hold exactly ``rules``; True when it was rewritten."""
        want = sorted(set(rules))
        have = await self.current()
        if have is None:
            await self.nat("-N", CHAIN)
        changed = have != want
        if changed:
            body = "".join(r.spec() + "\n" for r in want)
            await self._run(
                [*self.restore, "-w", "5", "--noflush"], f"*nat\n:{CHAIN} - [0:0]\n{body}COMMIT\n"
            )
            self.changes += 1
            log.info("tunnel DNAT rules: %s", ", ".join(f"{r.port}→{r.target}" for r in want) or "none")
        await self._jumps()
        return changed

    async def remove(self) -> None:
        """The jumps and the chain gone (nothing there is fine)."""
        for hook in HOOKS:
            jump = [hook, "-m", "comment", "--comment", JUMP_COMMENT, "-j", CHAIN]
            while (await self.nat("-D", *jump, check=False))[0] == 0:
                pass
        await self.nat("-F", CHAIN, check=False)
        await self.nat("-X", CHAIN, check=False)


async def run_dnat(
    client: KubeClient,
    namespace: str,
    manager: DnatManager,
    stop: asyncio.Event,
    *,
    stream_port: int = 0,
    every: float = 10.0,
) -> None:
    """Reconcile the rules from the ConfigMap every ``every`` s until ``stop``; then remove them."""
    try:
        while not stop.is_set():
            try:
                record = await ports.read(client, namespace)
            except (KedgeError, OSError) as exc:  # the API is away: the rules stay as they are
                log.warning("tunnel port record not read, rules kept: %s", exc)
            else:
                try:
                    await manager.apply(rules_of(record, stream_port))
                except IptablesError as exc:  # a busy lock, a killed child: tried again next round
                    log.warning("tunnel DNAT rules not applied: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
    finally:
        await manager.remove()
        log.info("tunnel DNAT rules removed")
