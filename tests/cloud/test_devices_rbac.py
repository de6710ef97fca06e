"""The Device controller uses exactly the verbs its ClusterRole grants, and waits and recovers while it
has no permission for devices."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import yaml

from runtime.kube.client import make_client
from runtime.kube.errors import KubeNotFound, error_for_status
from runtime.kube.resources import DEVICEMODELS, DEVICES, DEVICESTATUSES
from runtime.protocol import OP_INSERT
from runtime.templates import templates_dir
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.devicecloud import (
    actual,
    device,
    install_device_crds,
    model,
    of,
    start_controller,
    twin_report,
)
from tests.fixtures.wait import eventually_async


def _rbac_verbs() -> dict[str, set[str]]:
    """resource -> verbs the ClusterRole in templates/20-rbac.yaml grants in devices.kubeedge.io."""
    text = (templates_dir() / "20-rbac.yaml").read_text().replace("{{ namespace }}", "kubeedge")
    out: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all(text):
        if doc and doc["kind"] == "ClusterRole":
            for rule in doc["rules"]:
                if "devices.kubeedge.io" in rule["apiGroups"]:
                    for r in rule["resources"]:
                        out.setdefault(r, set()).update(rule["verbs"])
    return out


async def test_the_controller_uses_exactly_the_verbs_rbac_grants(cloudenv: CloudEnv) -> None:
    """Every devices.kubeedge.io call the controller makes through a whole life cycle (list, watch,
    create, report, move, delete) is one the template grants, and every verb granted on devicestatuses
    is used: least privilege, as docs/operations.md states it."""
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    own = make_client(cloudenv.cp.kubeconfig)
    used: dict[str, set[str]] = {}
    real_request, real_watch = own.request, own.watch_stream

    def note(plural: str, verb: str) -> None:
        used.setdefault(plural, set()).add(verb)

    async def request(method: str, path: str, **kw: Any) -> Any:
        parts = path.strip("/").split("/")
        if len(parts) > 2 and parts[1] == "devices.kubeedge.io":
            plural_at = parts.index("namespaces") + 2 if "namespaces" in parts else 3
            named = len(parts) > plural_at + 1
            verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}.get(
                method, "get" if named else "list"
            )
            note(parts[plural_at], verb)
        return await real_request(method, path, **kw)

    def watch_stream(res: Any, **kw: Any) -> Any:
        if res.group == "devices.kubeedge.io":  # its ack state (ObjectSyncs) has a rule of its own
            note(res.plural, "watch")
        return real_watch(res, **kw)

    own.request = request  # type: ignore[method-assign]
    own.watch_stream = watch_stream  # type: ignore[method-assign]
    ctl, task = start_controller(cloudenv, cloud, own)
    try:
        await eventually_async(ctl.synced.is_set, what="synced")
        edge = await cloudenv.edge("rbac-1", cloud)
        await cloudenv.client.create(DEVICEMODELS, model())
        await cloudenv.client.create(DEVICES, device("rbac-dev", "rbac-1"))
        await eventually_async(lambda: ctl.statuses.known, what="DeviceStatus created")
        await edge.hub.send(twin_report("rbac-dev", {"temperature": actual("5")}))
        await eventually_async(lambda: ctl.counters["statusWrites"] >= 1, what="status written")
        await cloudenv.client.delete(DEVICES, "rbac-dev", namespace="default")

        async def gone() -> bool:
            try:
                await cloudenv.client.get(DEVICESTATUSES, "rbac-dev", namespace="default")
                return False
            except KubeNotFound:
                return True

        await eventually_async(gone, what="DeviceStatus removed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await own.close()
    granted = _rbac_verbs()
    for plural, verbs in used.items():
        assert verbs <= granted.get(plural, set()), (plural, verbs, granted)
    assert granted["devicestatuses"] == {"get", "create", "patch", "delete"}
    # delete: unless the garbage collector (ownerReference) removed it first
    assert used["devicestatuses"] - {"delete"} == {"get", "create", "patch"}
    assert granted["devices"] == granted["devicemodels"] == {"get", "list", "watch"}
    assert {"list", "watch"} <= used["devices"] and {"list", "watch"} <= used["devicemodels"]


async def test_without_permission_for_devices_the_controller_waits_and_recovers(cloudenv: CloudEnv) -> None:
    """An older install whose RBAC lacks the device rules: the embedded server does not evaluate RBAC,
    so the 403 a kube-apiserver sends is put at the client's boundary for the first lists. The
    controller neither ends (which would stop `kedge cloud run`) nor spins; once allowed it serves."""
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    own = make_client(cloudenv.cp.kubeconfig)
    real = own.request
    refused = {"n": 0, "allow": False}
    status = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
        "message": 'devices.devices.kubeedge.io is forbidden: User '
        '"system:serviceaccount:kubeedge:kedge-cloud" cannot list resource "devices" in API group '
        '"devices.kubeedge.io" at the cluster scope',
        "details": {"group": "devices.kubeedge.io", "kind": "devices"}, "code": 403,
    }  # fmt: skip

    async def request(method: str, path: str, **kw: Any) -> Any:
        if "/devices.kubeedge.io/" in path and not refused["allow"]:
            refused["n"] += 1
            raise error_for_status(own.server, 403, status)
        return await real(method, path, **kw)

    own.request = request  # type: ignore[method-assign]
    ctl, task = start_controller(cloudenv, cloud, own)
    try:
        await eventually_async(lambda: refused["n"] >= 2, what="device lists refused")
        await asyncio.sleep(0.5)
        assert not task.done() and not ctl.synced.is_set()
        assert refused["n"] <= 6, "retries back off"
        refused["allow"] = True
        edge = await cloudenv.edge("perm-1", cloud)
        await cloudenv.client.create(DEVICES, device("perm-dev", "perm-1"))
        await eventually_async(
            lambda: of(edge, "device", OP_INSERT), within=15, what="device served once allowed"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await own.close()
