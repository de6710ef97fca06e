"""The stream endpoint as a root task of `kedge cloud run` (cloudcore.py wires it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.cloud.context import CloudContext
from runtime.cloud.streams.bearer import BearerReviews
from runtime.cloud.streams.endpoint import StreamEndpoint, UsageReads
from runtime.cloud.streams.tunnels import Tunnels
from runtime.errors import ConfigError
from runtime.kube.resources import PODS
from runtime.listen import binding
from runtime.pki import tls

log = logging.getLogger("kedge.cloudstream")


def client_ca(ctx: CloudContext) -> str:
    """PEM of the CA whose certificates API servers present: ``[stream] client_ca``, else the cluster
    CA the cloud's kubeconfig trusts (kubeadm signs apiserver-kubelet-client with it; kedge's embedded
    API server its own kubelet-client certificate)."""
    path = ctx.cfg.stream.client_ca
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"stream.client_ca = {path!r}: {exc.strerror}") from exc
    pem = ctx.client.ca_pem
    if not pem:
        raise ConfigError(
            "the stream endpoint needs the cluster CA: the kubeconfig names none",
            hint="set stream.client_ca to the CA file of the API server's kubelet-client certificate",
        )
    return pem


async def serve_streams(
    ctx: CloudContext,
    tunnels: Tunnels,
    hub_up: asyncio.Event,
    listening: Callable[[str, Callable[[], Awaitable[None]]], Awaitable[None]],
    usage: UsageReads | None = None,
) -> None:
    await hub_up.wait()
    cfg = ctx.cfg.stream
    # the usage routes take metrics-server's bearer token too (bearer.py): certificates optional then
    bearer = BearerReviews(ctx.client) if usage is not None else None
    sslctx = tls.client_ca_server_context(
        ctx.serving_cert, ctx.serving_key, client_ca(ctx), require_client_cert=bearer is None
    )
    ctx.other_ssl.append(sslctx)  # a re-issued serving certificate reaches it too (install_serving)

    async def pod(ns: str, name: str) -> dict[str, Any]:
        return await ctx.client.get(PODS, name, namespace=ns)

    endpoint = StreamEndpoint(tunnels, pod, sslctx, cfg.clients, usage, bearer)
    with binding("kedge stream endpoint", cfg.bind, cfg.port, hint="set stream.port (0: any free port)"):
        port = await endpoint.start(cfg.bind, cfg.port)
    log.info("stream endpoint listening on %s:%d", cfg.bind, port)
    await listening(f"{cfg.bind}:{port}", endpoint.stop)
