"""The embedded API server's dial to a kubelet endpoint that refuses its client certificate
(runtime/apiserver/kubelet/dial.py): kubectl prints `error dialing backend "https://…": <cause>`
naming the endpoint, the refusal and the certificate the API server presented — not an HTTP
library's internal state.

The refusing side is the cloud's real stream endpoint, trusting only another CA (a cloud configured
with a cluster CA that is not the embedded server's), and a blocking TLS server that sends its alert as
a kubelet (Go) does; the API server is `kedge apiserver` and the client kubectl.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.cloud.streams.endpoint import StreamEndpoint
from runtime.kube.client import KubeClient
from runtime.kube.resources import NODES, PODS
from runtime.pki import certs, tls
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.tlscerts import TLSCerts

pytestmark = pytest.mark.kubectl


async def _node_at(kube: KubeClient, name: str, port: int) -> None:
    """A node whose kubelet is 127.0.0.1:port, and a pod on it."""
    status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}  # fmt: skip
    await kube.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    await kube.patch(NODES, name, {"status": status}, subresource="status")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": name, "containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    await kube.create(PODS, pod, namespace="default")


async def _kubectl(apiserver: ApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl on a thread: the endpoint under test runs on this loop."""
    cmd = ["kubectl", "--kubeconfig", str(apiserver.kubeconfig), *args]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)


def _embedded(apiserver: ApiServer) -> None:
    if not apiserver.embedded:
        pytest.skip("the dial under test is the embedded API server's (KEDGE_TEST_KUBECONFIG names another)")


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
async def test_a_stream_endpoint_refusing_the_client_certificate(
    apiserver: ApiServer, kube: KubeClient, tls_certs: TLSCerts, version: str
) -> None:
    """TLS 1.3: the client's handshake is done when the endpoint drops it (EOF or RST on the first
    read); TLS 1.2: it is dropped during the handshake. asyncio sends no alert in either case."""
    _embedded(apiserver)
    cert, key = tls_certs.server.der()
    other_ca = certs.cert_pem(tls_certs.authority.cert).decode()  # not the embedded server's CA
    sslctx = tls.client_ca_server_context(cert, key, other_ca, require_client_cert=False)
    sslctx.maximum_version = ssl.TLSVersion[version]
    node = f"refuser-{version[-1]}"

    async def no_pods(ns: str, name: str) -> dict[str, Any]:
        raise AssertionError("the refused client reached the endpoint")

    ep = StreamEndpoint(None, no_pods, sslctx, ["kedge:apiserver"])  # type: ignore[arg-type]
    port = await ep.start("127.0.0.1", 0)
    try:
        await _node_at(kube, node, port)
        logs = await _kubectl(apiserver, "logs", node)
        execs = await _kubectl(apiserver, "exec", node, "--", "true")
    finally:
        await ep.stop()
    for done in (logs, execs):
        assert done.returncode != 0
        err = done.stderr
        assert f'error dialing backend "https://127.0.0.1:{port}": the endpoint closed the ' in err, err
        when = (
            "connection during the TLS handshake"
            if version == "TLSv1_2"
            else "TLS connection before answering"
        )
        assert when in err, err
        assert "as a TLS server does when it refuses the client certificate" in err, err
        assert 'its kubelet client certificate (CN "kedge:apiserver" issued by "' in err, err
        assert "h11" not in err and "SEND_RESPONSE" not in err and "ConnectionClosed" not in err, err


@pytest.fixture
def alerting_server(tls_certs: TLSCerts) -> Iterator[int]:
    """A blocking TLS server (OpenSSL writes its alert to the socket, as Go's crypto/tls does) that
    requires a client certificate of the test CA."""
    ctx = tls_certs.server_context()  # CERT_REQUIRED, the test CA only
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            with raw:
                raw.settimeout(10)
                try:
                    with ctx.wrap_socket(raw, server_side=True) as conn:
                        conn.recv(1024)
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()
        thread.join(10)


async def test_a_kubelet_alert_is_given_in_gos_words(
    apiserver: ApiServer, kube: KubeClient, alerting_server: int
) -> None:
    _embedded(apiserver)
    await _node_at(kube, "alerter", alerting_server)
    done = await _kubectl(apiserver, "logs", "alerter")
    assert done.returncode != 0
    prefix = f'error dialing backend "https://127.0.0.1:{alerting_server}": remote error: tls: '
    assert (
        prefix + "unknown certificate authority; this API server presents its kubelet client " in done.stderr
    )
    assert 'certificate (CN "kedge:apiserver" issued by "' in done.stderr, done.stderr
    assert "SEND_RESPONSE" not in done.stderr
