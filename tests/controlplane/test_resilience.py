"""One object must never take the embedded control plane down (issue 25): a real `kedge apiserver`
process with its controllers, a status patch real clients send, a restart on the same data dir."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.kube.resources import DEPLOYMENTS
from tests.controlplane.test_controllers import new_namespace
from tests.fixtures.apiserver import ApiServer, start_apiserver
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.procs import KEDGE, stop
from tests.fixtures.wait import eventually, eventually_async
from tests.kubeapi.conftest import deployment

DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
PAUSE = "registry.k8s.io/pause:3.9"


def http(server: ApiServer) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(server.ca_file))
    return httpx.Client(
        base_url=server.url, verify=verify, headers={"Authorization": f"Bearer {server.token}"}
    )


def conditions(c: httpx.Client, name: str) -> dict[str, dict[str, Any]]:
    obj = c.get(f"{DEPLOY}/{name}").json()
    return {x["type"]: x for x in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "apiserver"


def scale_web(c: httpx.Client, generation: int, who: str) -> None:
    """Scale deployment `web` to `generation` replicas (its next generation) and wait until `who`
    observed that generation."""
    r = c.patch(
        f"{DEPLOY}/web",
        json={"spec": {"replicas": generation}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    eventually(
        lambda: c.get(f"{DEPLOY}/web").json().get("status", {}).get("observedGeneration") == generation,
        20,
        f"{who} observing generation {generation}",
    )


def test_condition_without_reason_keeps_server_up_and_is_kept(data_dir: Path) -> None:
    server = start_apiserver(data_dir, "--controllers", in_memory=False)
    assert server.proc is not None
    try:
        with http(server) as c:
            assert c.post(DEPLOY, json=deployment("web", image=PAUSE)).status_code == 201
            eventually(
                lambda: "Available" in conditions(c, "web"), 20, "the deployment controller's conditions"
            )
            # a foreign condition without `reason` (optional in Kubernetes), as the patch
            patch = {"status": {"conditions": [{"type": "example.com/Audited", "status": "True"}]}}
            r = c.patch(
                f"{DEPLOY}/web/status",
                json=patch,
                headers={"Content-Type": "application/strategic-merge-patch+json"},
            )
            assert r.status_code == 200, r.text
            # the controller reconciles the changed object: scale it so there is work to do
            scale_web(c, 2, "the deployment controller")
            time.sleep(3.5)  # the issue saw the foreign condition vanish within ~3 s
            assert server.proc.poll() is None, "kedge apiserver exited"
            conds = conditions(c, "web")
            assert conds["example.com/Audited"] == {"type": "example.com/Audited", "status": "True"}
            assert {"Available", "Progressing"} <= set(conds)
            assert c.get("/readyz").text == "ok"
    finally:
        stop(server.proc)
    # the object stays stored: a restart on the same data dir must come up and keep reconciling
    server = start_apiserver(data_dir, "--controllers", in_memory=False)
    assert server.proc is not None
    try:
        with http(server) as c:
            scale_web(c, 3, "the restarted controller")
            assert "example.com/Audited" in conditions(c, "web")
            verbose = c.get("/readyz", params={"verbose": "1"})
            assert verbose.status_code == 200, verbose.text
            assert "[+]controller/deployment ok" in verbose.text.splitlines()
            assert server.proc.poll() is None
    finally:
        stop(server.proc)


# -- in-process: a controller whose reconcile keeps failing on one object ----------------------------


def readyz(kubeconfig: Path, token: bool = True) -> httpx.Response:
    import base64

    import yaml

    doc = yaml.safe_load(kubeconfig.read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    headers = {"Authorization": f"Bearer {user['token']}"} if token else {}
    return httpx.get(f"{cluster['server']}/readyz?verbose", verify=ctx, headers=headers)


async def test_failing_object_is_isolated_retried_and_reported(
    controlplane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not controlplane.embedded:
        pytest.skip("injects a fault into kedge's own deployment controller")
    from runtime.apiserver.controllers.deployments import DeploymentController

    client = controlplane.client
    ns = await new_namespace(client)
    calls: dict[str, int] = {}
    original = DeploymentController._status

    async def status_with_bug(self: DeploymentController, d: Any, new: Any, olds: Any) -> None:
        if d["metadata"]["name"] == "broken":
            calls["broken"] = calls.get("broken", 0) + 1
            raise KeyError("reason")  # what a controller bug on one stored object looks like
        await original(self, d, new, olds)

    monkeypatch.setattr(DeploymentController, "_status", status_with_bug)
    broken = deployment("broken", image=PAUSE)
    await client.create(DEPLOYMENTS, {**broken, "metadata": {"name": "broken", "namespace": ns}})

    async def reported() -> str | None:
        r = await asyncio.to_thread(readyz, controlplane.kubeconfig)
        return r.text if r.status_code == 500 and "[-]controller/deployment failed" in r.text else None

    text = await eventually_async(reported, within=15, what="/readyz naming the deployment controller")
    assert f"[-]controller/deployment failed: 1 object(s) failing: {ns}/broken: KeyError: 'reason'" in text
    assert "[+]controller/replicaset ok" in text and text.endswith("readyz check failed\n")
    anonymous = await asyncio.to_thread(readyz, controlplane.kubeconfig, False)
    assert anonymous.status_code == 500
    assert "[-]controller/deployment failed: reason withheld" in anonymous.text
    # `kedge status` on a root whose embedded API server is this one names the controller and object
    root = tmp_path / "root"
    (root / "var/lib/kedge").mkdir(parents=True)
    (root / "var/lib/kedge/apiserver").symlink_to(controlplane.kubeconfig.parent)
    proc = await asyncio.create_subprocess_exec(
        *KEDGE, "status", "--root", str(root), "-o", "json", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1, out
    shown = json.loads(out)["apiserver"]
    assert shown["running"] is True and shown["healthy"] is False and shown["failing"] == ["deployment"]
    assert f"controller deployment: 1 object(s) failing: {ns}/broken: KeyError" in shown["message"]
    # other objects of the same controller are still reconciled
    fine = deployment("fine", image=PAUSE)
    await client.create(DEPLOYMENTS, {**fine, "metadata": {"name": "fine", "namespace": ns}})

    async def fine_available() -> bool:
        d = await client.get(DEPLOYMENTS, "fine", namespace=ns)
        return any(c.get("type") == "Available" for c in (d.get("status") or {}).get("conditions") or [])

    await eventually_async(fine_available, within=15, what="the healthy deployment reconciled")
    # retried with backoff, not dropped and not hammered
    seen = calls["broken"]
    await asyncio.sleep(1.5)  # the thing under test: retries over 1.5 s are paced by the backoff
    assert calls["broken"] > 1 and calls["broken"] - seen < 15
    # gone object → the failure clears and readiness returns
    await client.delete(DEPLOYMENTS, "broken", namespace=ns)

    async def ready_again() -> bool:
        r = await asyncio.to_thread(readyz, controlplane.kubeconfig)
        return r.status_code == 200 and "[+]controller/deployment ok" in r.text

    await eventually_async(ready_again, within=15, what="/readyz ok after the object is gone")
