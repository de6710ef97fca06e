"""The fault lab: the embedded API server and `kedge cloud run` on the host, edges in namespaces.

    with fault_lab(tmp, edges=2) as lab:            # init, token, joins (≈ 15 s per edge)
        lab.edges[0].ns.partition(); ...; lab.edges[0].ns.heal()
        lab.report("partition-10s", lost_api_updates=0, ...)   # one JSON line on stdout

Reuses the user-path harness (tests/fixtures/e2e.py): `kedge init --embedded` (advertising the lab
bridge's address too, so the hub's certificate names it), `kedge join` run inside the edge's namespace
with `ip netns exec` (the detached runtime stays in it) against the bridge address, and the same
teardown (`kedge reset`, then kill by pid file, force-remove the node's containers), then the lab's
namespaces, veths, bridge and guard route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from tests.e2e.faults.netns import Lab, Netns
from tests.fixtures import require
from tests.fixtures.docker import ensure_busybox_image
from tests.fixtures.e2e import Cloud, Edge, _teardown, remove_edge, run
from tests.fixtures.procs import KEDGE, runs_in, start
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"
RESTARTS = "io.kedge.container.restartCount"
UPDATED = "kedge.local/busybox:fault"  # the same image under a second name: an image update on a pod
UNREACHABLE = "node.kubernetes.io/unreachable"
DISCONNECTED = "node.kedge.io/disconnected"  # the cloud's taint for a lost session (design.md §5)
PODS = ("steady", "changing", "gone")  # on the faulted edge before the fault


@dataclass
class NsEdge(Edge):
    """An edge whose `kedge join` and restarts run inside its network namespace."""

    ns: Netns = field(default_factory=lambda: Netns("", "", ""))
    server: str = ""  # bridge-address:hub-port
    mqtt: tuple[str, ...] = ("--mqtt", "off")

    def join(self, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return run(
            self.ns.exec(
                *KEDGE, "join", "--root", str(self.root), "--token", token, "--server", self.server,
                "--cert-port", str(self.cloud.cert_port), "--node-name", self.node, *self.mqtt,
                "--ready-timeout", "60", *extra,
            ),
            timeout=120,
        )  # fmt: skip

    def run_detached(self) -> subprocess.Popen[bytes]:
        proc = start(
            self.ns.exec(*KEDGE, "--root", str(self.root), "edge", "run"), self.root / "edge-run.log"
        )
        self.spawned.append(proc)
        eventually(
            lambda: runs_in(self.pid(), proc) and self.paths.status_socket.exists(),
            30, "the restarted edge runtime to serve its status socket", log=self.root / "edge-run.log",
        )  # fmt: skip
        return proc


@dataclass
class FaultLab:
    lab: Lab
    cloud: Cloud
    edges: list[NsEdge]
    client: docker.DockerClient

    def report(self, scenario: str, **figures: Any) -> dict[str, Any]:
        line = {"scenario": scenario, **figures}
        print(json.dumps(line, sort_keys=True), flush=True)
        return line

    def pinned_pod(self, name: str, edge: Edge, **labels: str) -> None:
        doc = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"fault": "yes", **labels}},
            "spec": {"nodeName": edge.node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "36000"]}]},
        }  # fmt: skip
        self.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))

    def pods(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in self.cloud.get("pods", "-l", "fault")["items"]}


def start_pods(lab: FaultLab, edge: Edge, prefix: str = "") -> dict[str, dict[str, Any]]:
    """PODS (names after `prefix`: one round of a scenario) on `edge`, once Running: pod name → its app
    container (running_containers)."""
    lab.client.images.get(IMAGE).tag(UPDATED)
    names = {prefix + name for name in PODS}
    for name in sorted(names):
        lab.pinned_pod(name, edge)
    return eventually(lambda: (c := running_containers(edge)).keys() >= names and c, 120, "pods Running")


def change_pods(lab: FaultLab, edge: Edge, prefix: str = "") -> None:
    """The changes made during a fault: pod `fresh` created, `changing`'s image updated, `gone` deleted."""
    lab.pinned_pod(f"{prefix}fresh", edge)
    lab.cloud.kubectl("set", "image", f"pod/{prefix}changing", f"app={UPDATED}")
    lab.cloud.kubectl("delete", "pod", f"{prefix}gone", "--wait=false")


def ready(pods: dict[str, dict[str, Any]], name: str) -> bool:
    conds = (pods.get(name) or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def taints(lab: FaultLab, edge: Edge) -> set[str]:
    return {t["key"] for t in lab.cloud.get("node", edge.node).get("spec", {}).get("taints") or []}


def uids(lab: FaultLab) -> dict[str, str]:
    return {name: p["metadata"]["uid"] for name, p in lab.pods().items()}


def changes_reflected(lab: FaultLab, edge: Edge, prefix: str = "") -> dict[str, bool]:
    """Each change_pods change (and the node's health) → whether `edge` and its node reflect it yet."""
    mine, pods = running_containers(edge), lab.pods()
    fresh, changing, gone = (prefix + n for n in ("fresh", "changing", "gone"))
    running = mine.get(changing)
    image = lab.client.containers.get(running["id"]).attrs["Config"]["Image"] if running else None
    return {
        f"create {fresh}": fresh in mine and ready(pods, fresh),
        f"update {changing}": image == UPDATED and ready(pods, changing),
        f"delete {gone}": gone not in mine and gone not in pods,
        "node ready": taints(lab, edge) == set() and edge.connected(),
    }


def label(lab: FaultLab, pod: str, value: str) -> None:
    lab.cloud.kubectl("label", "pod", pod, f"gen={value}", "--overwrite")


def unacked(lab: FaultLab, edge: Edge) -> list[str]:
    """Pods bound to `edge` whose current resourceVersion the edge has not acknowledged (stored in its
    cache) according to the cloud's ack state (ObjectSync `<node>.<uid>`)."""
    syncs = lab.cloud.get("objectsyncs.reliablesyncs.kubeedge.io", "-n", "kubeedge")["items"]
    acked = {o["metadata"]["name"]: (o.get("status") or {}).get("objectResourceVersion") for o in syncs}
    return sorted(
        name
        for name, p in lab.pods().items()
        if p["spec"].get("nodeName") == edge.node
        and acked.get(f"{edge.node}.{p['metadata']['uid']}") != p["metadata"]["resourceVersion"]
    )


def resync_counts(log: Path, offset: int) -> dict[str, int]:
    """node → messages its last resync sent, from a cloud log written after `offset`."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    return {m[1]: int(m[2]) for m in re.finditer(r"edge (\S+): resync sent (\d+) message", text)}


def converge(check: Callable[[], bool], what: str, since: float, within: float = 180) -> float:
    """Poll `check` until it holds or `within` s passed — what it still finds missing is reported as
    lost by the scenario, not raised here; the seconds from `since` (monotonic) to then."""
    with contextlib.suppress(AssertionError):
        eventually(check, within, what, interval=0.5)
    return round(time.monotonic() - since, 1)


def running_containers(edge: Edge) -> dict[str, dict[str, Any]]:
    """pod name → its running app container (id, start time, restart count) on `edge`."""
    out: dict[str, dict[str, Any]] = {}
    for cid, c in edge.containers().items():
        pod = c["labels"].get("io.kedge.pod.name")
        if c["running"] and pod and c["labels"].get("io.kedge.container.kind") == "app":
            out[pod] = {"id": cid, "started": c["started"], "restarts": c["labels"].get(RESTARTS, "0")}
    return out


@contextmanager
def delaying_proxy(host: str, target_port: int, delay: float) -> Iterator[TcpProxy]:
    """A TcpProxy on `host` to 127.0.0.1:target_port holding each chunk `delay` s, on its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = asyncio.run_coroutine_threadsafe(TcpProxy("127.0.0.1", target_port, host, delay).start(), loop)
    try:
        yield proxy.result(10)
    finally:
        asyncio.run_coroutine_threadsafe(proxy.result().stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def fault_lab(tmp: Path, edges: int = 2, mqtt_port: int = 0) -> Iterator[FaultLab]:
    """`edges` edges; given `mqtt_port`, the first runs the embedded broker there (in its namespace)."""
    require("docker")
    require("kubectl")
    require("root")
    lab = Lab.create()
    client = docker.from_env(timeout=60)
    cloud = Cloud(tmp / "cloud")
    joined: list[NsEdge] = []
    try:
        ensure_busybox_image(client)
        cloud.init("--advertise-address", lab.host_address)
        server = f"{lab.host_address}:{cloud.hub_port}"
        for i in range(edges):
            ns = lab.add(f"e{i}")
            edge = NsEdge(
                tmp / f"edge{i}", f"fault-{uuid.uuid4().hex[:6]}", cloud, client, ns=ns, server=server
            )
            if mqtt_port and i == 0:
                edge.mqtt = ("--mqtt", "embedded", "--set", f"mqtt.port={mqtt_port}")
            joined.append(edge)
            edge.join(cloud.token())
        yield FaultLab(lab, cloud, joined, client)
    finally:
        for edge in joined[1:]:
            remove_edge(edge)
        if joined:
            _teardown(cloud, joined[0])
        else:
            run([*KEDGE, "reset", "cloud", "--root", str(cloud.root), "--force"], check=False, timeout=120)
        lab.destroy()
        client.close()
