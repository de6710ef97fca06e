"""The stream endpoint's TLS follows the cloud's serving certificate when it is re-issued (a cloud
runs for years; the certificate is renewed 30 days before it ends, runtime/cloud/cloudcore.py)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from runtime.cloud import pki_store
from runtime.cloud.context import build_context
from runtime.cloud.streams.serve import client_ca
from runtime.config import CloudConfig
from runtime.kube.client import KubeClient
from runtime.kube.resources import SECRETS
from runtime.pki import tls
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudinit import ensure_namespace


async def _served_cert(port: int) -> bytes:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return bytes(der)
    finally:
        writer.close()


async def test_a_reissued_serving_certificate_reaches_the_stream_endpoint(
    apiserver: ApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    await ensure_namespace(kube)
    ctx = await build_context(CloudConfig(), tmp_path, apiserver.kubeconfig)
    server = None
    try:
        sslctx = tls.client_ca_server_context(ctx.serving_cert, ctx.serving_key, client_ca(ctx))
        ctx.other_ssl.append(sslctx)  # as serve_streams does
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=sslctx)
        port = server.sockets[0].getsockname()[1]
        first = await _served_cert(port)
        assert first == ctx.serving_cert
        await kube.delete(SECRETS, pki_store.SERVING_SECRET, namespace="kubeedge")
        cert, key = await ctx.store.ensure_serving(ctx.ca, ctx.advertise(), days=40)
        ctx.install_serving(cert, key)
        assert await _served_cert(port) == cert != first
    finally:
        if server is not None:
            server.close()
        await ctx.client.close()
