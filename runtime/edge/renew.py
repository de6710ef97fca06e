"""Node certificate renewal over :10002 with the current certificate, well before expiry (design.md §4).

Why here: the runtime is what holds the certificate for months; a join token has long expired by
then, so the request authenticates with the node's own client certificate (the bootstrap server
accepts that instead of a token). The key stays (a new CSR signed by it); the new certificate is
written atomically and loaded into the hub's ssl context in place, so the next reconnect uses it.
``cryptography`` is imported only when a renewal is due — the idle runtime never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from runtime.edge.layout import EdgeFiles
from runtime.errors import KedgeError
from runtime.fsutil import write_atomic

log = logging.getLogger("kedge.edge.renew")
RENEW_BEFORE = 30 * 86400  # seconds of validity left when renewal starts
CHECK_EVERY = 6 * 3600.0
RETRY_EVERY = 3600.0


def _not_after(path: Path) -> float | None:
    try:
        decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
        return float(ssl.cert_time_to_seconds(decoded["notAfter"]))
    except (OSError, ValueError, KeyError, ssl.SSLError):
        return None


def renew_once(files: EdgeFiles, host: str, port: int, node: str, timeout: float = 15.0) -> float:
    """Blocking: request a new certificate with the current one; returns its notAfter."""
    from runtime.pki import certs  # cryptography: only now

    key = certs.load_key(files.key.read_bytes())
    csr = certs.make_csr(key, node)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(files.ca))
    ctx.load_cert_chain(str(files.cert), str(files.key))
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    try:
        conn.request(
            "GET",
            "/edge.crt",
            body=csr,
            headers={"NodeName": node, "Content-Type": "application/octet-stream"},
        )
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise KedgeError(
            f"certificate renewal at https://{host}:{port}/edge.crt refused ({resp.status}): "
            f"{body[:200].decode(errors='replace')}"
        )
    cert = certs.load_cert(body)
    if certs.node_of(cert) != node:
        raise KedgeError(f"renewed certificate names {certs.node_of(cert)!r}, not {node!r}")
    write_atomic(files.cert, certs.cert_pem(cert), mode=0o600)
    return certs.not_after(cert).timestamp()


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
        expiry = _not_after(files.cert)
        if expiry is not None and expiry - time.time() < renew_before:
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
