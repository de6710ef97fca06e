"""The uplink is woken per stored report only while the cloud link is up: offline (no hub, or a hub
that is not connected) it looks again on its own every second, and a DMI mapper's 1000 reports/s
must not cost the loop a wake-up each."""

from __future__ import annotations

from pathlib import Path

from runtime.edge.devices.store import TwinStore
from runtime.edge.devices.uplink import Uplink
from runtime.edge.edgehub import EdgeHub
from runtime.protocol import Message
from tests.fixtures.tlscerts import TLSCerts


async def test_an_offline_uplink_is_not_woken_per_report(tmp_path: Path, tls_certs: TLSCerts) -> None:
    async def ignore(_: Message) -> None:
        return None

    store = await TwinStore.open(tmp_path / "cache.db")
    offline = EdgeHub(
        "127.0.0.1:1",
        "n1",
        on_message=ignore,
        outbox_path=tmp_path / "o.db",
        ssl_context=tls_certs.client_context(None),
    )  # never started: offline
    try:
        for hub in (None, offline):
            uplink = Uplink(store, hub, window=0.5)
            uplink.kick()
            assert not uplink._kick.is_set()
    finally:
        await store.close()
