"""The simulated edges of cloud_scale.py: one process holds edges [first, first+count), each with its
own node certificate (real mTLS), registers its Node through the channel and idles as recorded.

Commands on stdin (``mark``, ``quit``), JSON lines on stdout (``ready``, ``bytes``, ``pod``; with
``--reconnect``, ``reconnected`` each time an edge whose session ended is back: attempts, refusals). Every
process dials from its own loopback source address so 10,000 sessions never run short of ephemeral
ports, and raises RLIMIT_NOFILE first (one descriptor per session).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"
KEEPALIVE = 15.0
LEASE_EVERY = 10.0


def node_body(node: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": node,
            "labels": {
                "node-role.kubernetes.io/edge": "",
                "kubernetes.io/hostname": node,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        # Ready as an edge reports it once; the node-lifecycle controller turns it Unknown if the
        # Lease goes stale, which the benchmark counts
        "status": ready_status("2", "4Gi", "EdgeReady", _now()),
    }


def ready_status(cpu: str, memory: str, reason: str, stamp: str) -> dict[str, Any]:
    """A Node's status as a ready kubelet or edge reports it (control-plane and cloud benches)."""
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    ready = {"type": "Ready", "status": "True", "reason": reason}
    return {
        "capacity": resources,
        "allocatable": dict(resources),
        "conditions": [{**ready, "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
    }


class SimEdge:
    def __init__(self, node: str) -> None:
        self.node = node
        self.ws: Any = None
        self.waiters: dict[str, asyncio.Future[Any]] = {}
        self.epoch = uuid.uuid4().hex  # the cache epoch a kedge edge keeps across reconnects
        self.refused: dict[str, int] = {}  # failed dial → count, since the last session


def lease_body(node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": _now()},
    }


class Sim:
    """One simulator process: edges [first, first+count), commands on stdin, JSON lines on stdout."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cert_dir = Path(args.certs)
        self.ca = (self.cert_dir / "ca.pem").read_bytes().decode()
        self.key = str(self.cert_dir / "key.pem")
        self.kedge = args.mode == "kedge"
        self.edges = [SimEdge(f"sim-{i:05d}") for i in range(args.first, args.first + args.count)]
        self.counted = 0  # payload bytes both ways
        self.out_lock = asyncio.Lock()
        self.sem = asyncio.Semaphore(args.concurrency)

    async def run(self) -> None:
        t0 = time.time()
        tasks = [asyncio.create_task(self.spread(KEEPALIVE, self.keepalive))]
        await asyncio.gather(*(self.bring_up(e) for e in self.edges))
        await self.emit({"ready": True, "seconds": time.time() - t0, "count": len(self.edges)})
        if not self.kedge:
            tasks.append(asyncio.create_task(self.spread(LEASE_EVERY, self.renew_lease)))
        await self.serve_commands()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*(e.ws.close() for e in self.edges if e.ws is not None), return_exceptions=True)

    async def serve_commands(self) -> None:
        """``mark`` answers the byte count; ``quit`` or end of input ends the run."""
        loop = asyncio.get_running_loop()
        reader_in = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader_in), sys.stdin)
        while True:
            line = (await reader_in.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "mark":
                await self.emit({"bytes": self.counted, "t": time.time()})

    async def emit(self, obj: dict[str, Any]) -> None:
        async with self.out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def send_text(self, e: SimEdge, msg: Any) -> Any:
        from runtime.protocol import encode

        data = encode(msg)
        self.counted += len(data)
        return e.ws.send(data)

    async def reader(self, e: SimEdge) -> None:
        """Serve the session; with --reconnect, dial again as kedge's edge does when it ends (the same
        jittered backoff and cache epoch) and say so."""
        from runtime.backoff import backoff

        while True:
            with contextlib.suppress(Exception):
                await self.read_loop(e)
            if not self.args.reconnect:
                return
            e.ws, lost = None, time.time()
            for delay in backoff(0.5, cap=30.0):
                await asyncio.sleep(delay)
                if await self.dial(e):
                    break
            refused, e.refused = e.refused, {}
            await self.emit({"reconnected": e.node, "lost": lost, "t": time.time(), "refused": refused})

    async def read_loop(self, e: SimEdge) -> None:
        from runtime.protocol import ack, decode

        async for data in e.ws:
            self.counted += len(data)
            msg = decode(data)
            if msg.parent_msg_id and msg.operation == "response":
                self.answered(e, msg)
                if msg.content != "OK":
                    await self.send_text(e, ack(msg))
                continue
            await self.send_text(e, ack(msg))
            if os.environ.get("KEDGE_BENCH_DEBUG"):
                print(
                    f"{time.time():.1f} {e.node} {msg.operation} {msg.resource} {msg.resourceversion}",
                    file=sys.stderr,
                )
            if msg.operation == "insert" and "/pod/" in msg.resource:
                await self.emit({"pod": msg.resource.rsplit("/", 1)[1], "t": time.time()})

    @staticmethod
    def answered(e: SimEdge, msg: Any) -> None:
        fut = e.waiters.pop(msg.parent_msg_id, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def request(self, e: SimEdge, op: str, resource: str, content: Any) -> Any:
        from runtime.protocol import new_message

        msg = new_message("edged", "meta", op, resource, content)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        e.waiters[msg.msg_id] = fut
        await self.send_text(e, msg)
        return await asyncio.wait_for(fut, 120)

    async def bring_up(self, e: SimEdge) -> None:
        async with self.sem:
            await self.connect(e)
            asyncio.get_running_loop().create_task(self.reader(e))
            resp = await self.request(e, "insert", f"null/node/{e.node}", node_body(e.node))
            assert isinstance(resp.content, dict), resp.content
            if not self.kedge:
                await self.request(e, "insert", f"kube-node-lease/lease/{e.node}", lease_body(e.node))

    async def connect(self, e: SimEdge) -> None:
        """Dial the hub as `e` (20 tries); a KubeEdge edge sends no kedge headers and no pings."""
        for attempt in range(20):
            if await self.dial(e):
                return
            await asyncio.sleep(0.5 + attempt)

    async def dial(self, e: SimEdge) -> bool:
        """One websocket handshake as `e`; a failure is counted in ``e.refused`` by its kind."""
        from websockets.asyncio.client import connect

        from runtime import __version__

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca)
        ctx.load_cert_chain(str(self.cert_dir / f"{e.node}.pem"), self.key)
        headers = {"node_id": e.node, "project_id": PROJECT}
        if self.kedge:
            headers.update({"X-Kedge-Version": __version__, "X-Kedge-Cache-Epoch": e.epoch})
        try:
            e.ws = await connect(
                f"wss://{self.args.server}/{PROJECT}/{e.node}/events",
                ssl=ctx,
                additional_headers=headers,
                proxy=None,
                open_timeout=120,
                ping_interval=2 * KEEPALIVE if self.kedge else None,
                max_size=None,
                compression=None,
                local_addr=(self.args.source, 0),
            )
            return True
        except Exception as exc:  # refused (cloud down), a 4xx/5xx handshake answer, a timeout
            status = getattr(getattr(exc, "response", None), "status_code", None)
            kind = f"http-{status}" if status else type(exc).__name__
            e.refused[kind] = e.refused.get(kind, 0) + 1
            return False

    async def spread(self, every: float, action: Any) -> None:
        """One task per simulator (not per edge): each edge acts once per period, offsets spread."""
        offsets = sorted((random.uniform(0, every), e) for e in self.edges) if self.edges else []
        start = time.monotonic()
        cycle = 0
        while True:
            for off, e in offsets:
                delay = start + cycle * every + off - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                asyncio.get_running_loop().create_task(action(e))
            cycle += 1

    async def keepalive(self, e: SimEdge) -> None:
        from runtime.protocol import keepalive

        if e.ws is not None:  # keepalives start with the session, also while the others connect
            with contextlib.suppress(Exception):
                await self.send_text(e, keepalive())

    async def renew_lease(self, e: SimEdge) -> None:
        with contextlib.suppress(TimeoutError):
            await self.request(e, "update", f"kube-node-lease/lease/{e.node}", lease_body(e.node))


async def sim(args: argparse.Namespace) -> None:
    from runtime.cloud.hub.handshake import raise_nofile_limit

    raise_nofile_limit()
    await Sim(args).run()


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("--server", "--certs", "--mode"):
        ap.add_argument(name, required=True)
    ap.add_argument("--source", default="127.0.0.1", help="loopback address to dial from")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--reconnect", action="store_true", help="dial again when a session ends")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import uvloop

    uvloop.run(sim(args))


if __name__ == "__main__":
    main()
