"""Device-plane start-up: configuration errors fail fast; a busy port is said once, counted, retried."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from runtime.config import MqttSection
from runtime.edge.devices.plane import DevicePlane
from runtime.errors import ConfigError
from tests.devices.conftest import start_plane
from tests.devices.mqttclient import MODEL, clients, device


async def _nothing(_typ: str) -> list[object]:
    return []


@pytest.mark.parametrize(
    "cfg",
    [MqttSection(listen=["127.0.0.1:notaport"]), MqttSection(mode="external", url="http://x:1")],
)
async def test_bad_listen_address_or_broker_url_is_a_config_error(cfg: MqttSection, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        await DevicePlane(cfg, "n1", tmp_path / "c.db", cached=_nothing).open()


def test_a_busy_port_is_said_once_counted_and_the_broker_starts_when_it_frees(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    caplog.set_level(logging.INFO, logger="kedge.edge.devices")
    objects = {"device": [device()], "devicemodel": [MODEL]}
    cfg = MqttSection(port=port, report_window_seconds=0.2)
    import threading

    threading.Timer(1.6, blocker.close).start()  # after two or three failed attempts (backoff 0.5-1 s, 1-2 s)
    handle, finish = start_plane(tmp_path / "cache.db", objects, cfg)  # returns once the broker is up
    try:
        st = handle.status()
        assert st["trouble"]["listen"]["count"] >= 2 and st["trouble"]["listen"]["active"] is False
        said = [r for r in caplog.records if "cannot listen" in r.getMessage()]
        assert len(said) == 1, "a repeating failure is logged once, then counted"
        with clients("127.0.0.1", port) as make:
            make("after").sub("x")
    finally:
        finish()
