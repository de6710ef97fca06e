"""Pods start in parallel, bounded, each pod's own steps in order (issue 22) — read from the engine's
event stream (its order, not our clocks), so no assertion depends on timing."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from runtime.edge.pods import labels
from runtime.edge.pods.manager import PodManager
from tests.fixtures.pods import PodEnv, cstatus
from tests.fixtures.wait import eventually_async

pytestmark = pytest.mark.docker


class EngineEvents:
    """The engine's container events for one node, in the engine's order: (event, pod name, container)."""

    def __init__(self, client: docker.DockerClient, node: str) -> None:
        self.seen: list[tuple[str, str, str]] = []
        filters = {"type": "container", "label": [f"{labels.NODE}={node}"]}
        self._stream = client.events(decode=True, filters=filters)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        try:
            for ev in self._stream:
                attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                name = attrs.get(labels.CONTAINER) or attrs.get("io.kedge.container.kind", "")
                self.seen.append((str(ev.get("status")), attrs.get(labels.POD_NAME, ""), name))
        except Exception:  # closed at the end
            pass

    def close(self) -> None:
        self._stream.close()

    def app_started(self, pod: str) -> int:
        """Index of the pod's app container `start` event."""
        return next(i for i, (ev, p, c) in enumerate(self.seen) if ev == "start" and p == pod and c == "app")

    def in_flight_max(self, pods: list[str]) -> int:
        """Most pods at once between their first `create` and their app's `start`."""
        first = {
            p: next(i for i, (ev, q, _) in enumerate(self.seen) if q == p and ev == "create") for p in pods
        }
        last = {p: self.app_started(p) for p in pods}
        return max(sum(first[p] <= i <= last[p] for p in pods) for i in range(len(self.seen)))


@pytest.fixture
def events(pod_env: PodEnv, docker_client: docker.DockerClient) -> Iterator[EngineEvents]:
    ev = EngineEvents(docker_client, pod_env.node)
    yield ev
    ev.close()


def running(s: dict[str, Any]) -> bool:
    return s["phase"] == "Running" and all(c["ready"] for c in s["containerStatuses"])


def sleeper(pod_env: PodEnv, name: str, **spec: Any) -> dict[str, Any]:
    return pod_env.pod(name, [{"name": "app", "command": ["sleep", "3600"]}], **spec)


async def wait_events(events: EngineEvents, cond: Any, within: float = 30.0) -> None:
    def held() -> bool:
        assert cond(), f"engine events: {events.seen}"
        return True

    await eventually_async(held, within, "the engine events")


async def test_pods_start_concurrently_within_the_bound(pod_env: PodEnv, events: EngineEvents) -> None:
    m = pod_env.manager(parallel=2, slow_call=300)  # no call counts as hung, however loaded the engine
    await m.start()
    pods = [sleeper(pod_env, f"p{i}") for i in range(6)]
    await asyncio.gather(*(m.sync_pod(p) for p in pods))
    names = [p["metadata"]["name"] for p in pods]
    for n in names:
        await pod_env.wait(n, running)
    await wait_events(events, lambda: all(("start", n, "app") in events.seen for n in names))
    # two pods were under way at once (create of one before the other's app started), never three
    assert events.in_flight_max(names) == 2, events.seen
    assert m.ctx.bound.peak == 2 and m.ctx.bound.busy == 0


async def test_five_pods_are_created_before_the_first_has_started(
    pod_env: PodEnv, events: EngineEvents
) -> None:
    m = pod_env.manager(parallel=5)
    await m.start()
    pods = [sleeper(pod_env, f"q{i}") for i in range(5)]
    await asyncio.gather(*(m.sync_pod(p) for p in pods))
    names = [p["metadata"]["name"] for p in pods]
    await wait_events(events, lambda: all(("start", n, "app") in events.seen for n in names))
    first_app = min(events.app_started(n) for n in names)
    created_before = {p for ev, p, _ in events.seen[:first_app] if ev == "create"}
    assert created_before == set(names), events.seen


async def test_each_pods_init_containers_keep_their_order_when_pods_start_together(
    pod_env: PodEnv, events: EngineEvents
) -> None:
    m = pod_env.manager(parallel=4)
    await m.start()
    pod_env.run(m)
    inits = [{"name": "one", "command": ["sh", "-c", "sleep 0.3"]}, {"name": "two", "command": ["true"]}]
    pods = [sleeper(pod_env, f"i{i}", initContainers=[dict(c) for c in inits]) for i in range(4)]
    await asyncio.gather(*(m.sync_pod(p) for p in pods))
    names = [p["metadata"]["name"] for p in pods]
    for n in names:
        await pod_env.wait(n, running, within=60)
    await wait_events(events, lambda: all(("start", n, "app") in events.seen for n in names))
    for n in names:
        mine = [(ev, c) for ev, p, c in events.seen if p == n and ev in ("start", "die")]
        order = [x for x in mine if x[1] in ("one", "two", "app")]
        assert order[:5] == [
            ("start", "one"),
            ("die", "one"),
            ("start", "two"),
            ("die", "two"),
            ("start", "app"),
        ]
    # and the pods did overlap: some pod's init ran while another pod's was under way
    assert events.in_flight_max(names) > 1


class SilentRegistry:
    """A loopback TCP server that accepts and never answers: a pull from it hangs (~25 s in dockerd)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for c in self.accepted:
            c.close()


async def start_hanging_pull(
    pod_env: PodEnv, m: PodManager, registry: SilentRegistry, image: str
) -> tuple[dict[str, Any], asyncio.Task[None]]:
    """Sync a pod whose image comes from the silent registry; back once dockerd is waiting on it."""
    stuck = pod_env.pod(
        "stuck",
        [{"name": "app", "image": f"127.0.0.1:{registry.port}/{image}", "imagePullPolicy": "IfNotPresent"}],
    )
    task = asyncio.create_task(m.sync_pod(stuck))
    await eventually_async(lambda: registry.accepted, within=30, what="dockerd reaching the silent registry")
    return stuck, task


async def test_a_hanging_pull_holds_up_no_other_pod(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    registry = SilentRegistry()
    try:
        m = pod_env.manager(parallel=1)  # one slot: the pull must give it up
        await m.start()
        pod_env.run(m)
        _, hanging = await start_hanging_pull(pod_env, m, registry, "hang:1")
        ok = [sleeper(pod_env, f"ok{i}") for i in range(2)]
        await asyncio.gather(*(m.sync_pod(p) for p in ok))
        st = await pod_env.wait("ok0", running)
        await pod_env.wait("ok1", running)
        # the reconcile loop is not held either: a killed container comes back while the pull hangs
        docker_client.containers.get(cstatus(st, "app")["containerID"].removeprefix("docker://")).kill()
        await pod_env.wait("ok0", lambda s: running(s) and cstatus(s, "app")["restartCount"] == 1)
        assert not hanging.done(), "the pull ended early: nothing was shown"
        assert not [s for n, s in pod_env.statuses if n == "stuck" and s["phase"] == "Running"]
    finally:
        registry.close()
    await asyncio.wait_for(hanging, 60)  # the closed registry fails the pull: ErrImagePull
    st = pod_env.last("stuck")
    assert cstatus(st, "app")["state"]["waiting"]["reason"] in ("ErrImagePull", "ImagePullBackOff")


class StallingEngine:
    """A unix-socket proxy to the real engine that holds, unanswered, every request containing `stall`
    (a hung engine call); everything else is passed through byte for byte."""

    def __init__(self, path: str, stall: bytes, engine: str = "/var/run/docker.sock") -> None:
        self.path, self.stall, self.engine = path, stall, engine
        self.stalled = 0
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine)
            self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and self.stall in data:
                    self.stalled += 1
                    return  # never forwarded, never answered: the caller's thread waits
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


async def test_a_hanging_engine_call_holds_up_no_other_pod(pod_env: PodEnv, tmp_path: Any) -> None:
    from runtime.edge.pods.adapter import DockerAdapter

    engine = StallingEngine(str(tmp_path / "docker.sock"), b"containers/create?name=kedge_POD_wedged_")
    try:
        # one slot; the wedged pod's sandbox create never returns (until the proxy closes)
        m = pod_env.manager(parallel=1, slow_call=0.5, docker=DockerAdapter(f"unix://{engine.path}"))
        await m.start()
        wedged = asyncio.create_task(m.sync_pod(sleeper(pod_env, "wedged")))
        await eventually_async(lambda: engine.stalled, within=10, what="the sandbox create stalled")
        assert engine.stalled == 1
        await asyncio.gather(*(m.sync_pod(sleeper(pod_env, f"fine{i}")) for i in range(2)))
        for i in range(2):
            await pod_env.wait(f"fine{i}", running)
        assert not wedged.done()
        assert m.ctx.bound.peak == 1  # the bound held: the wedged pod had given its slot up
    finally:
        engine.close()
    await asyncio.wait_for(asyncio.gather(wedged, return_exceptions=True), 30)


async def test_deleting_a_pod_does_not_wait_for_its_hanging_pull(pod_env: PodEnv) -> None:
    registry = SilentRegistry()
    try:
        m = pod_env.manager(parallel=1)
        await m.start()
        stuck, syncing = await start_hanging_pull(pod_env, m, registry, "hang:2")
        await m.delete_pod(stuck, 0)  # while dockerd still waits on the registry
        await asyncio.wait_for(syncing, 5)  # the pass ended: the pull was abandoned, not failed
        assert "abandoned" in cstatus(pod_env.last("stuck"), "app")["state"]["waiting"]["message"]
        assert not m.pods
    finally:
        registry.close()
