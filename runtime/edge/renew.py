"""Node certificate renewal over :10002 with the current certificate, well before expiry (design.md §4).

Why here: the runtime is what holds the certificate for months; a join token has long expired by
then, so the request authenticates with the node's own client certificate (the bootstrap server
accepts that instead of a token). The key stays (a new CSR signed by it); the new certificate is
written atomically and loaded into the hub's ssl context in place, so the next reconnect uses it.
``cryptography`` is imported only when a renewal is due — the idle runtime never loads it: the expiry
is read from the record written beside the certificate (runtime/edge/identity.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable

from runtime.edge.certclient import CertServer
from runtime.edge.identity import certificate_facts, save_certificate
from runtime.edge.layout import EdgeFiles
from runtime.errors import KedgeError

log = logging.getLogger("kedge.edge.renew")
RENEW_BEFORE = 30 * 86400  # seconds of validity left when renewal starts
CHECK_EVERY = 6 * 3600.0
RETRY_EVERY = 3600.0


def renew_once(files: EdgeFiles, host: str, port: int, node: str, timeout: float = 15.0) -> float:
    """Blocking: request a new certificate with the current one; returns its notAfter."""
    from runtime.pki import certs  # cryptography: only now

    csr = certs.make_csr(certs.load_key(files.key.read_bytes()), node)
    server = CertServer(
        host, port, ca_file=str(files.ca), identity=(str(files.cert), str(files.key)), timeout=timeout
    )
    cert = certs.load_cert(server.request_certificate(node, csr))
    if certs.node_of(cert) != node:
        raise KedgeError(f"renewed certificate names {certs.node_of(cert)!r}, not {node!r}")
    return save_certificate(files, cert).not_after


async def renew_forever(
    files: EdgeFiles,
    host: str,
    port: int,
    node: str,
    on_renewed: Callable[[], None] | None,
    stop: asyncio.Event,
    *,
    renew_before: float = RENEW_BEFORE,
    check_every: float = CHECK_EVERY,
) -> None:
    """Until ``stop``: renew when less than ``renew_before`` seconds of validity remain."""
    while not stop.is_set():
        wait = check_every
        facts = certificate_facts(files)
        if facts is not None and facts.not_after - time.time() < renew_before:
            try:
                new = await asyncio.to_thread(renew_once, files, host, port, node)
                if on_renewed is not None:
                    on_renewed()  # the hub loads the new certificate for its next handshake
                log.info(
                    "node certificate renewed; valid until %s",
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(new)),
                )
            except (OSError, ssl.SSLError, KedgeError) as exc:
                log.warning("certificate renewal failed (retrying in %.0fs): %s", RETRY_EVERY, exc)
                wait = min(check_every, RETRY_EVERY)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
