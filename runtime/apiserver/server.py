"""Start the embedded API server: storage, credentials, TLS, the four namespaces, the admin kubeconfig.

`serve()` runs until cancelled; the admin kubeconfig (mode 0600) is written only once the socket is
bound, with the port actually bound, so its appearance means "ready".
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from runtime.apiserver.admission.create import SYSTEM_PRIORITY_CLASSES
from runtime.apiserver.api import Api
from runtime.apiserver.http.app import make_app
from runtime.apiserver.http.auth import TokenSigner, load_admin_token
from runtime.apiserver.http.certs import ensure_kubelet_client_cert, ensure_serving_cert
from runtime.apiserver.http.metrics import ApiMetrics
from runtime.apiserver.kubelet.dial import KubeletClient
from runtime.apiserver.kubelet.proxy import KubeletProxy
from runtime.apiserver.metricsapi import MetricsApi, UsageSource
from runtime.apiserver.registry import eventttl, objects
from runtime.apiserver.registry.crds import CrdController
from runtime.apiserver.registry.db import Database
from runtime.apiserver.registry.resources import Registry
from runtime.apiserver.registry.storage import Store
from runtime.fsutil import write_atomic
from runtime.listen import AddressInUse, start_site

log = logging.getLogger("kedge.apiserver")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def kubeconfig(server: str, ca_pem: bytes, token: str) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kedge",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "kedge-admin", "user": {"token": token}}],
        "contexts": [{"name": "kedge", "context": {"cluster": "kedge", "user": "kedge-admin"}}],
        "current-context": "kedge",
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _system_object(
    store: Store,
    kind: str,
    api_version: str,
    name: str,
    *,
    namespace: str = "",
    labels: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An object the server creates itself, with the metadata a create would give it."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["uid"] = objects.new_uid()
    meta["creationTimestamp"] = objects.now()
    if labels is not None:
        meta["labels"] = labels
    meta["resourceVersion"] = str(store.next_rv())
    return {"kind": kind, "apiVersion": api_version, "metadata": meta, **fields}


_PRIORITY_CLASS_DESCRIPTIONS = {
    "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
    "system-cluster-critical": "Used for system critical pods that must run in the cluster, but can be "
    "moved to another node if necessary.",
}


async def bootstrap(store: Store) -> None:
    """Objects every cluster starts with (only the missing ones, so restarts keep RVs)."""
    missing = [("/namespaces", name, _initial_namespace) for name in INITIAL_NAMESPACES] + [
        ("scheduling.k8s.io/priorityclasses", name, _system_priority_class)
        for name in SYSTEM_PRIORITY_CLASSES
    ]
    changes = [
        ("ADDED", path, ("", name), make(store, name))
        for path, name, make in missing
        if store.get(path, "", name) is None
    ]
    if changes:
        await store.commit(changes)


def _initial_namespace(store: Store, name: str) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": name}
    spec, status = {"finalizers": ["kubernetes"]}, {"phase": "Active"}
    return _system_object(store, "Namespace", "v1", name, labels=labels, spec=spec, status=status)


def _system_priority_class(store: Store, name: str) -> dict[str, Any]:
    return _system_object(
        store,
        "PriorityClass",
        "scheduling.k8s.io/v1",
        name,
        value=SYSTEM_PRIORITY_CLASSES[name],
        globalDefault=False,
        description=_PRIORITY_CLASS_DESCRIPTIONS[name],
        preemptionPolicy="PreemptLowerPriority",
    )


async def publish_self(store: Store, host: str, port: int) -> None:
    """The `kubernetes` Service (10.96.0.1:443) and its Endpoints, as kube-apiserver keeps them."""
    changes: list[tuple[str, str, tuple[str, str], dict[str, Any]]] = []
    ip = "127.0.0.1" if host in ("0.0.0.0", "::", "", "localhost") else host
    if store.get("/services", "default", "kubernetes") is None:
        svc = _system_object(
            store,
            "Service",
            "v1",
            "kubernetes",
            namespace="default",
            labels={"component": "apiserver", "provider": "kubernetes"},
            spec={
                "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}],
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
            status={"loadBalancer": {}},
        )
        changes.append(("ADDED", "/services", ("default", "kubernetes"), svc))
    subsets: list[dict[str, Any]] = [
        {"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    ]
    ep = store.get("/endpoints", "default", "kubernetes")
    if ep is None:
        obj = _system_object(
            store,
            "Endpoints",
            "v1",
            "kubernetes",
            namespace="default",
            labels={"endpointslice.kubernetes.io/skip-mirror": "true"},
            subsets=subsets,
        )
        changes.append(("ADDED", "/endpoints", ("default", "kubernetes"), obj))
    elif ep.obj().get("subsets") != subsets:
        cur = ep.obj()
        cur["subsets"] = subsets
        cur["metadata"]["resourceVersion"] = str(store.next_rv())
        changes.append(("MODIFIED", "/endpoints", ("default", "kubernetes"), cur))
    if changes:
        await store.commit(changes)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 6443,
    in_memory: bool = False,
    kubeconfig_out: Path | None = None,
    ready: asyncio.Event | None = None,
    fsync: bool = False,
    watch_history: int = 10_000,
    controllers: bool = True,
    controller_options: dict[str, Any] | None = None,
    event_ttl: float = eventttl.DEFAULT_TTL,
    usage_socket: Path | str | None = None,
) -> None:
    """Serve the API until cancelled; with `controllers`, the embedded control plane runs beside it
    (scheduler, GC, namespaces, node lifecycle, Deployments…) so the server behaves like a small
    cluster, not an object store. No controller and no stored object can take the server down: a
    failing controller is restarted and reported as a failing /readyz check (controllers/manager.py)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    pki = data_dir / "pki"
    cert = ensure_serving_cert(pki, host)
    token = load_admin_token(data_dir / "admin.token")
    signer = TokenSigner(pki / "sa.key")
    db = None if in_memory else Database(data_dir / "state.db", fsync=fsync)
    store = Store(db, history=watch_history)
    store.load()
    registry = Registry()
    crd_ctl = CrdController(registry, store)
    crd_ctl.load()
    store.listeners.append(crd_ctl)
    loop = asyncio.get_running_loop()
    store.start(loop)
    crd_ctl.resume()
    await bootstrap(store)
    store.floor = store.rv
    api = Api(registry=registry, store=store, admin_token=token, signer=signer, control_plane=controllers)
    if db is not None:  # kube-apiserver's readyz check of its storage has this name
        api.checks["etcd"] = lambda: db.error
    kubelet = KubeletProxy(api, KubeletClient.load(*ensure_kubelet_client_cert(pki)))
    usage = MetricsApi(api, UsageSource(usage_socket)) if usage_socket else None  # metrics.k8s.io
    app = make_app(api, ApiMetrics(CollectorRegistry()), kubelet, usage)
    sslctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sslctx.load_cert_chain(cert.cert_file, cert.key_file)
    sslctx.set_alpn_protocols(["http/1.1"])
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        bound = await start_site(
            runner, host, port, what="kedge apiserver", ssl_context=sslctx, backlog=1024, reuse_address=True,
            hint="another API server (or program) holds it: stop it, or pick another port (--port, or "
            "--apiserver-port of `kedge init --embedded`; 0: any free port)",
        )  # fmt: skip
    except AddressInUse:
        await runner.cleanup()
        raise
    await publish_self(store, host, bound)
    url = f"https://{_url_host(host)}:{bound}"
    api.server_url = url
    text = kubeconfig(url, cert.ca_pem, token)
    write_atomic(data_dir / "admin.kubeconfig", text)
    if kubeconfig_out is not None:
        write_atomic(Path(kubeconfig_out), text)
    log.info("apiserver serving on %s", url)
    if ready is not None:
        ready.set()
    expiry = asyncio.create_task(eventttl.run(store, event_ttl), name="event-ttl")
    try:
        if controllers:
            from runtime.apiserver.controllers.manager import run_embedded

            await run_embedded(api, data_dir / "admin.kubeconfig", **(controller_options or {}))
            raise RuntimeError("embedded controllers stopped")
        await asyncio.Event().wait()
    finally:
        expiry.cancel()
        for ws in store.watchers.values():
            for w in ws:
                w.close()
        await runner.cleanup()
        store.close()
