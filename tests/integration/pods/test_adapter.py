"""The Docker adapter: typed errors naming the engine, nothing blocking the event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.manager import PodManager
from runtime.errors import NotFound, Unreachable
from tests.fixtures.pods import MemRefs, PodEnv

pytestmark = pytest.mark.docker


async def test_unreachable_engine_is_a_typed_error_naming_the_socket(tmp_path: Path) -> None:
    sock = tmp_path / "no-docker.sock"
    docker = DockerAdapter(f"unix://{sock}", timeout=5)
    with pytest.raises(Unreachable) as err:
        await docker.version()
    assert str(sock) in str(err.value) and err.value.hint

    async def on_status(pod: dict, status: dict) -> None:
        raise AssertionError("no status without an engine")

    mgr = PodManager(docker, node_name="n", state_dir=tmp_path, refs=MemRefs(), on_status=on_status)
    with pytest.raises(Unreachable):
        await mgr.start()
    await mgr.reconcile_all()  # the loop logs and carries on; it never raises
    await docker.close()


async def test_calls_run_off_the_event_loop(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    pod = pod_env.pod("exec", [{"name": "app", "command": ["sleep", "3600"]}])
    await m.sync_pod(pod)
    st = await pod_env.wait("exec", lambda s: s["phase"] == "Running")
    cid = st["containerStatuses"][0]["containerID"].removeprefix("docker://")
    docker = m.docker
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)  # the thing under test: how often the loop turns
            ticks += 1

    task = asyncio.create_task(ticker())
    t0 = time.monotonic()
    code, out = await docker.exec(cid, ["sh", "-c", "sleep 0.6; echo done"], 5.0)
    elapsed = time.monotonic() - t0
    task.cancel()
    assert (code, out) == (0, b"done\n") and elapsed >= 0.6
    assert ticks >= 20, f"the event loop stalled during a docker call ({ticks} ticks in {elapsed:.2f}s)"
    assert await docker.exec(cid, ["sleep", "5"], 0.3) == (-1, b"timeout")
    assert await docker.inspect("kedge-no-such-container") is None
    with pytest.raises(NotFound):
        await docker.start("kedge-no-such-container")


async def test_sandbox_rootfs_imports_and_runs_air_gapped(docker_client: object) -> None:
    """The import path of the pause image, under a throwaway tag (the shared tag stays in use)."""
    import uuid

    import docker as docker_sdk

    from runtime.edge.pods.sandbox import rootfs_tar

    client = docker_sdk.from_env()
    tag = uuid.uuid4().hex[:10]
    adapter = DockerAdapter()
    await adapter.import_image(rootfs_tar(), "kedge.local/pause-test", tag, ['ENTRYPOINT ["/pause"]'])
    image = f"kedge.local/pause-test:{tag}"
    try:
        info = await adapter.image(image)
        assert info is not None and info["Config"]["Entrypoint"] == ["/pause"]
        assert info["Size"] < 4096  # a few hundred bytes of program, nothing else
        c = client.containers.run(image, detach=True, network_mode="none")
        try:
            t0 = time.monotonic()
            c.stop(timeout=10)
            assert time.monotonic() - t0 < 3
            c.reload()
            assert c.attrs["State"]["ExitCode"] == 0
        finally:
            c.remove(force=True)
    finally:
        client.images.remove(image, force=True)
        client.close()
        await adapter.close()
