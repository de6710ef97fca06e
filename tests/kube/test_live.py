"""runtime/kube against the real embedded API server (`kedge apiserver` subprocess): verbs and typed
errors, pagination, list-watch-resume, relist on 410 with DELETED, retries across a hung or killed
server, apply created/configured/unchanged, and the Device CRDs served and used."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from itertools import repeat
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import Unreachable
from runtime.kube.apply import apply_objects, delete_objects
from runtime.kube.client import KubeClient, make_client
from runtime.kube.errors import AlreadyExists, Gone, KubeConflict, KubeNotFound, Unauthorized
from runtime.kube.resources import CONFIGMAPS, CRDS, DEVICEMODELS, DEVICES, NAMESPACES, load_yaml
from runtime.kube.retry import with_retries
from runtime.kube.watch import Event, watch_with_resume
from tests.fixtures.kube import RestartableApiServer, TcpProxy, kubeconfig_via, make_proxy
from tests.fixtures.wait import eventually_async

NS = "default"


@contextlib.asynccontextmanager
async def client_for(kubeconfig: Path, request_timeout: float = 10.0) -> AsyncIterator[KubeClient]:
    client = make_client(kubeconfig, timeout=request_timeout)
    try:
        yield client
    finally:
        await client.close()


def cm(name: str, value: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


class Collector:
    """Runs watch_with_resume in a task and lets the test wait for events."""

    def __init__(self, gen: AsyncIterator[Event]) -> None:
        self.events: list[tuple[str, str | None]] = []
        self._cond = asyncio.Condition()
        self._task = asyncio.create_task(self._run(gen))

    async def _run(self, gen: AsyncIterator[Event]) -> None:
        async for typ, obj in gen:
            async with self._cond:
                self.events.append((typ, obj["metadata"]["name"] if obj else None))
                self._cond.notify_all()

    async def wait(self, pred: Callable[[list[tuple[str, str | None]]], bool], within: float = 15.0) -> None:
        async def check() -> None:
            async with self._cond:
                await self._cond.wait_for(lambda: pred(self.events) or self._task.done())
            if self._task.done():
                self._task.result()
                raise AssertionError(f"watch ended: {self.events}")

        try:
            await asyncio.wait_for(check(), within)
        except TimeoutError:
            raise AssertionError(f"timed out; events so far: {self.events}") from None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def has(*wanted: tuple[str, str | None]) -> Callable[[list[tuple[str, str | None]]], bool]:
    return lambda events: all(w in events for w in wanted)


async def test_verbs_and_typed_errors(restartable_apiserver: RestartableApiServer, tmp_path: Path) -> None:
    kc = restartable_apiserver.kubeconfig
    async with client_for(kc) as client:
        assert client.source == f"--kubeconfig {kc}"
        assert client.server == restartable_apiserver.url
        created = await client.create(CONFIGMAPS, cm("a"))
        assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
        assert (await client.get(CONFIGMAPS, "a", namespace=NS))["data"] == {"k": "1"}
        with pytest.raises(AlreadyExists):
            await client.create(CONFIGMAPS, cm("a"))
        patched = await client.patch(CONFIGMAPS, "a", {"data": {"k": "2"}}, namespace=NS)
        stale = {**created, "data": {"k": "3"}}
        with pytest.raises(KubeConflict) as conflict:
            await client.replace(CONFIGMAPS, stale)
        assert conflict.value.code == 409 and conflict.value.reason == "Conflict"
        fresh = {**patched, "data": {"k": "3"}}
        assert (await client.replace(CONFIGMAPS, fresh))["data"] == {"k": "3"}
        with pytest.raises(KubeNotFound) as missing:
            await client.get(CONFIGMAPS, "nope", namespace=NS)
        assert "nope" in str(missing.value) and client.server in str(missing.value)
        await client.delete(CONFIGMAPS, "a", namespace=NS)
        with pytest.raises(KubeNotFound):
            await client.get(CONFIGMAPS, "a", namespace=NS)
        names = {n["metadata"]["name"] for n in (await client.list(NAMESPACES)).items}
        assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names

    text = kc.read_text()
    bad = tmp_path / "bad.kubeconfig"
    token = restartable_apiserver_token(text)
    bad.write_text(text.replace(token, "not-the-token"))
    async with client_for(bad) as client:
        with pytest.raises(Unauthorized):
            await client.list(CONFIGMAPS, namespace=NS)


def restartable_apiserver_token(kubeconfig_text: str) -> str:
    import yaml

    conf = yaml.safe_load(kubeconfig_text)
    return str(conf["users"][0]["user"]["token"])


async def test_list_follows_pages(restartable_apiserver: RestartableApiServer) -> None:
    async with client_for(restartable_apiserver.kubeconfig) as client:
        for i in range(23):
            await client.create(CONFIGMAPS, cm(f"p{i:02d}", labels={"set": "p"}))
        await client.create(CONFIGMAPS, cm("other"))
        got = await client.list(CONFIGMAPS, namespace=NS, labels={"set": "p"}, limit=5)
        assert sorted(o["metadata"]["name"] for o in got.items) == [f"p{i:02d}" for i in range(23)]
        assert int(got.resource_version) > 0


async def test_watch_sync_listed_then_live_events(restartable_apiserver: RestartableApiServer) -> None:
    async with client_for(restartable_apiserver.kubeconfig) as client:
        await client.create(CONFIGMAPS, cm("pre"))
        watch = Collector(watch_with_resume(client, CONFIGMAPS, namespace=NS))
        try:
            await watch.wait(has(("LISTED", None)))
            assert watch.events[: watch.events.index(("LISTED", None))] == [("SYNC", "pre")]
            await client.create(CONFIGMAPS, cm("new"))
            await client.patch(CONFIGMAPS, "pre", {"data": {"k": "9"}}, namespace=NS)
            await client.delete(CONFIGMAPS, "new", namespace=NS)
            await watch.wait(has(("ADDED", "new"), ("MODIFIED", "pre"), ("DELETED", "new")))
            live = watch.events[watch.events.index(("LISTED", None)) + 1 :]
            assert live == [("ADDED", "new"), ("MODIFIED", "pre"), ("DELETED", "new")]
        finally:
            await watch.close()


async def test_watch_survives_line_separators_inside_strings(
    restartable_apiserver: RestartableApiServer,
) -> None:
    """U+2028, U+2029 and U+0085 inside a value are not line ends of the watch stream (only "\n" is)."""
    async with client_for(restartable_apiserver.kubeconfig) as client:
        watch = Collector(watch_with_resume(client, CONFIGMAPS, namespace=NS))
        try:
            await watch.wait(has(("LISTED", None)))
            await client.create(CONFIGMAPS, cm("odd", "a\u2028b\u2029c\x85d"))
            await client.create(CONFIGMAPS, cm("after"))
            await watch.wait(has(("ADDED", "odd"), ("ADDED", "after")))
            live = watch.events[watch.events.index(("LISTED", None)) + 1 :]
            assert live == [("ADDED", "odd"), ("ADDED", "after")]
        finally:
            await watch.close()


async def test_watch_resumes_after_partition_without_relist(
    restartable_apiserver: RestartableApiServer, tcp_proxy_factory: list[TcpProxy], tmp_path: Path
) -> None:
    """Connection cut while others write: the watch backs off, resumes from its RV, misses nothing."""
    proxy = await make_proxy(tcp_proxy_factory, restartable_apiserver.port)
    via = kubeconfig_via(restartable_apiserver.kubeconfig, proxy.port, tmp_path / "via.kubeconfig")
    async with (
        client_for(restartable_apiserver.kubeconfig) as direct,
        client_for(via, request_timeout=2.0) as watcher,
    ):
        await direct.create(CONFIGMAPS, cm("a"))
        watch = Collector(watch_with_resume(watcher, CONFIGMAPS, namespace=NS, delays=lambda: repeat(0.3)))
        try:
            await watch.wait(has(("LISTED", None)))
            proxy.cut()
            await direct.create(CONFIGMAPS, cm("b"))
            await direct.delete(CONFIGMAPS, "a", namespace=NS)
            await asyncio.sleep(0.8)  # the watcher is failing to reconnect now
            proxy.restore()
            await watch.wait(has(("ADDED", "b"), ("DELETED", "a")))
            assert watch.events == [("SYNC", "a"), ("LISTED", None), ("ADDED", "b"), ("DELETED", "a")]
        finally:
            await watch.close()


async def test_watch_resumes_after_silent_partition(
    restartable_apiserver: RestartableApiServer, tcp_proxy_factory: list[TcpProxy], tmp_path: Path
) -> None:
    """Packets dropped, no reset: the silent watch is presumed dead after read_timeout and resumed."""
    server = restartable_apiserver
    proxy = await make_proxy(tcp_proxy_factory, server.port)
    via = kubeconfig_via(server.kubeconfig, proxy.port, tmp_path / "via.kubeconfig")
    async with client_for(server.kubeconfig) as direct, client_for(via, request_timeout=1.0) as watcher:
        await direct.create(CONFIGMAPS, cm("a"))
        gen = watch_with_resume(
            watcher, CONFIGMAPS, namespace=NS, read_timeout=1.0, delays=lambda: repeat(0.2)
        )
        watch = Collector(gen)
        try:
            await watch.wait(has(("LISTED", None)))
            proxy.freeze()
            await direct.create(CONFIGMAPS, cm("b"))
            await direct.delete(CONFIGMAPS, "a", namespace=NS)
            await asyncio.sleep(2.5)  # the thing under test: nothing gets through a frozen link
            assert watch.events == [("SYNC", "a"), ("LISTED", None)]  # nothing got through
            proxy.restore()
            await watch.wait(has(("ADDED", "b"), ("DELETED", "a")), within=10)
            assert watch.events == [("SYNC", "a"), ("LISTED", None), ("ADDED", "b"), ("DELETED", "a")]
        finally:
            await watch.close()


async def test_watch_relists_on_410_and_emits_deleted(
    restartable_apiserver: RestartableApiServer,
    tcp_proxy_factory: list[TcpProxy],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The watcher is partitioned while objects change and the server restarts (its watch history
    starts over), so resuming from the old RV answers 410: the relist must emit DELETED for the
    object it no longer sees, MODIFIED for the changed one and ADDED for the new one."""
    caplog.set_level(logging.INFO, logger="runtime.kube.watch")
    server = restartable_apiserver
    proxy = await make_proxy(tcp_proxy_factory, server.port)
    via = kubeconfig_via(server.kubeconfig, proxy.port, tmp_path / "via.kubeconfig")
    async with client_for(server.kubeconfig) as setup:
        for name in ("keep", "change", "gone"):
            await setup.create(CONFIGMAPS, cm(name))
    async with client_for(via, request_timeout=2.0) as watcher:
        watch = Collector(watch_with_resume(watcher, CONFIGMAPS, namespace=NS, delays=lambda: repeat(0.3)))
        try:
            await watch.wait(has(("LISTED", None)))
            old_rv = (await watcher.list(CONFIGMAPS, namespace=NS)).resource_version
            proxy.cut()
            async with client_for(server.kubeconfig) as direct:
                await direct.delete(CONFIGMAPS, "gone", namespace=NS)
                await direct.patch(CONFIGMAPS, "change", {"data": {"k": "2"}}, namespace=NS)
                await direct.create(CONFIGMAPS, cm("fresh"))
            server.kill()
            server.start()
            async with client_for(server.kubeconfig) as direct:  # the server really answers 410 now
                with pytest.raises(Gone):
                    async for _ in direct.watch_stream(CONFIGMAPS, namespace=NS, resource_version=old_rv):
                        pass
            proxy.restore()
            await watch.wait(has(("DELETED", "gone"), ("MODIFIED", "change"), ("ADDED", "fresh")))
            tail = watch.events[watch.events.index(("LISTED", None)) + 1 :]
            assert sorted(tail) == [("ADDED", "fresh"), ("DELETED", "gone"), ("MODIFIED", "change")]
            assert "expired (410), relisting" in caplog.text
            async with client_for(server.kubeconfig) as direct:  # and it keeps watching afterwards
                await direct.create(CONFIGMAPS, cm("after"))
            await watch.wait(has(("ADDED", "after")))
        finally:
            await watch.close()


async def test_retries_ride_out_a_hung_then_a_killed_server(
    restartable_apiserver: RestartableApiServer,
) -> None:
    server = restartable_apiserver
    async with client_for(server.kubeconfig) as setup:  # the first write may be slow on a loaded machine
        await setup.create(CONFIGMAPS, cm("r"))
    async with client_for(server.kubeconfig, request_timeout=0.5) as client:
        await client.get(CONFIGMAPS, "r", namespace=NS)
        server.pause()  # SIGSTOP: connections are accepted by the kernel, nothing answers
        try:
            with pytest.raises(Unreachable) as err:
                await client.get(CONFIGMAPS, "r", namespace=NS)
            assert server.url in str(err.value)
            loop = asyncio.get_running_loop()
            loop.call_later(1.2, server.resume)
            t0 = time.monotonic()
            got = await with_retries(lambda: client.get(CONFIGMAPS, "r", namespace=NS), attempts=10)
            assert got["metadata"]["name"] == "r" and time.monotonic() - t0 >= 1.0
        finally:
            server.resume()

        server.kill()
        with pytest.raises(Unreachable):
            await with_retries(lambda: client.get(CONFIGMAPS, "r", namespace=NS), attempts=2)
        restart = asyncio.create_task(asyncio.to_thread(server.start))
        got = await with_retries(lambda: client.get(CONFIGMAPS, "r", namespace=NS), attempts=12)
        assert got["metadata"]["name"] == "r"
        await restart


async def test_apply_created_configured_unchanged(restartable_apiserver: RestartableApiServer) -> None:
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeedge"}},
        {**cm("settings"), "metadata": {"name": "settings", "namespace": "kubeedge"}},
    ]
    async with client_for(restartable_apiserver.kubeconfig) as client:
        first = await apply_objects(client, objs)
        assert [r.action for r in first] == ["created", "created"]
        assert [r.describe() for r in first] == ["namespace/kubeedge created", "configmap/settings created"]
        again = await apply_objects(client, objs)
        assert [r.action for r in again] == ["unchanged", "unchanged"]
        changed = [objs[0], {**objs[1], "data": {"k": "2"}}]
        dry = await apply_objects(client, changed, dry_run=True)
        assert [r.action for r in dry] == ["unchanged", "configured"]
        assert (await client.get(CONFIGMAPS, "settings", namespace="kubeedge"))["data"] == {"k": "1"}
        real = await apply_objects(client, changed)
        assert [r.action for r in real] == ["unchanged", "configured"]
        stored = await client.get(CONFIGMAPS, "settings", namespace="kubeedge")
        assert stored["data"] == {"k": "2"}
        gone = await delete_objects(client, [objs[1], cm("never")])
        assert [r.action for r in gone] == ["not found", "deleted"]


TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "crds"
DEVICE_OBJECTS = """
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: thermometer, namespace: default}
spec: {protocol: modbus, properties: [{name: temperature, type: INT, accessMode: ReadOnly}]}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: t1, namespace: default}
spec: {deviceModelRef: {name: thermometer}, nodeName: edge-1, protocol: {protocolName: modbus}}
"""


async def test_device_crds_as_generic_resources(restartable_apiserver: RestartableApiServer) -> None:
    async with client_for(restartable_apiserver.kubeconfig) as client:
        with pytest.raises(KubeNotFound):
            await client.list(DEVICES, namespace=NS)
        crds = [TEMPLATES / f"devices.kubeedge.io_{p}.yaml" for p in ("devicemodels", "devices")]
        manifest = "\n---\n".join([*(f.read_text() for f in crds), DEVICE_OBJECTS])
        results = await apply_objects(client, load_yaml(manifest))
        assert [(r.kind, r.action) for r in results] == [
            ("CustomResourceDefinition", "created"),
            ("CustomResourceDefinition", "created"),
            ("DeviceModel", "created"),
            ("Device", "created"),
        ]
        device = await client.get(DEVICES, "t1", namespace=NS)
        assert device["spec"]["deviceModelRef"] == {"name": "thermometer"}
        status = {"status": {"twins": [{"propertyName": "temperature", "reported": {"value": "21"}}]}}
        # KubeEdge's Device CRD has no status subresource: status is written with the main resource
        await client.patch(DEVICES, "t1", status, namespace=NS)
        patched = await client.get(DEVICES, "t1", namespace=NS)
        assert patched["status"]["twins"][0]["reported"]["value"] == "21"
        assert [m["metadata"]["name"] for m in (await client.list(DEVICEMODELS)).items] == ["thermometer"]
        await client.delete(CRDS, "devices.devices.kubeedge.io")

        async def stopped_serving() -> bool:
            try:
                await client.list(DEVICES, namespace=NS)
            except KubeNotFound:
                return True
            return False

        await eventually_async(stopped_serving, within=10, what="devices no longer served")
