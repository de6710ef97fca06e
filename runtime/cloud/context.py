"""CloudContext: what every part of the cloud process shares, built once by ``build_context``.

    build_context(cfg, root, kubeconfig) -> CloudContext   API client, CA (persisted before use), PKI
                                                          store, serving certificate, metrics registry

The servers that need TLS take ``hub_ssl`` (client certificate required, CloudHub :10000) or
``bootstrap_ssl`` (optional, :10002); both are re-loaded in place when the serving certificate is
re-issued. ``ready_checks[name]`` gates /readyz, ``addresses[name]`` is what each server bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from runtime import __version__
from runtime.cloud.pki_store import PKIStore
from runtime.config import CloudConfig
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient, make_client
from runtime.kube.errors import KubeNotFound
from runtime.paths import Paths
from runtime.pki import certs, tls


@dataclass
class CloudContext:
    """What every cloud task shares. Built once by `run`; tasks must not replace its members."""

    cfg: CloudConfig
    paths: Paths
    client: KubeClient
    store: PKIStore
    ca: certs.CA
    registry: CollectorRegistry
    serving_cert: bytes = b""  # DER
    serving_key: bytes = b""  # DER
    hub_ssl: Any = None  # ssl.SSLContext, client certificate required (CloudHub :10000)
    bootstrap_ssl: Any = None  # ssl.SSLContext, client certificate optional (:10002)
    other_ssl: list[Any] = field(default_factory=list)  # more servers with the serving certificate (streams)
    ready_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # what each server actually bound
    in_cluster: bool = False  # running in a pod with the ServiceAccount's credentials
    # Whether this replica does the cluster's singleton work (token GC); the controllers replace it with
    # their replica leadership, a cloud without them is alone.
    leader: Callable[[], bool] = field(default=lambda: True)
    serving_expiry: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.serving_expiry = Gauge(
            "kedge_cloud_serving_cert_expiry_timestamp_seconds",
            "Expiry of the CloudHub serving certificate (unix time)",
            registry=self.registry,
        )

    def ready(self) -> dict[str, bool]:
        out = {}
        for name, check in self.ready_checks.items():
            try:
                out[name] = bool(check())
            except Exception:
                out[name] = False
        return out

    def advertise(self) -> list[str]:
        """SANs of the serving certificate: the advertise addresses (default loopback) and, in a
        pod, the Service's DNS names so edges inside the cluster can verify it too."""
        out = list(self.cfg.advertise_addresses) or ["127.0.0.1", "localhost"]
        if self.in_cluster:
            ns = self.cfg.namespace
            out += [f"kedge-cloud.{ns}.svc", f"kedge-cloud.{ns}.svc.cluster.local"]
        return out

    def install_serving(self, cert_der: bytes, key_der: bytes) -> None:
        """Use a (new) serving certificate: existing ssl contexts are re-loaded in place, so servers
        already listening hand it to every new handshake without a restart."""
        self.serving_cert, self.serving_key = cert_der, key_der
        if self.hub_ssl is None:
            self.hub_ssl = tls.server_context(cert_der, key_der, self.ca.cert_der, require_client_cert=True)
            self.bootstrap_ssl = tls.server_context(cert_der, key_der, self.ca.cert_der)
        else:
            for ctx in (self.hub_ssl, self.bootstrap_ssl, *self.other_ssl):
                tls.reload_chain(ctx, cert_der, key_der)
        cert = certs.load_cert(cert_der)
        self.serving_expiry.set(certs.not_after(cert).timestamp())


def _kubeconfig_flag(cfg: CloudConfig, kubeconfig: Path | None) -> Path | None:
    """--kubeconfig, else the config's kubeconfig if that file exists, else the usual lookup."""
    if kubeconfig is not None:
        return kubeconfig
    if cfg.kubeconfig and Path(cfg.kubeconfig).is_file():
        return Path(cfg.kubeconfig)
    return None


async def build_context(cfg: CloudConfig, root: Path, kubeconfig: Path | None = None) -> CloudContext:
    """Connect, load-or-create the CA (persisted before use) and the serving certificate."""
    paths = Paths.of(root, "cloud")
    client = make_client(_kubeconfig_flag(cfg, kubeconfig))
    try:
        store = PKIStore(client, cfg.namespace)
        try:
            ca = await store.ensure_ca()
        except KubeNotFound as exc:
            raise KedgeError(
                f"cannot keep the CA in namespace {cfg.namespace} of {client.server}: {exc}",
                hint="install the cloud's namespace and CRDs first: kedge init --host (or kedge init)",
            ) from exc
        ctx = CloudContext(cfg, paths, client, store, ca, CollectorRegistry())
        ctx.in_cluster = client.source_info.source == "in-cluster"
        cert, key = await store.ensure_serving(ca, ctx.advertise(), cfg.hub.cert_validity_days)
        ctx.install_serving(cert, key)
    except BaseException:
        await client.close()
        raise
    Gauge("kedge_cloud_info", "kedge cloud build", ["version"], registry=ctx.registry).labels(
        __version__
    ).set(1)
    return ctx
