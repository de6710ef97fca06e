"""Device-plane start-up: configuration errors fail fast; a busy port is said once, counted, retried."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from pathlib import Path

import pytest

from runtime.config import MqttSection
from runtime.edge.devices.plane import DevicePlane
from runtime.errors import ConfigError
from tests.devices.conftest import start_plane
from tests.devices.mqttclient import MODEL, clients, device, twin_update
from tests.fixtures import find_binary
from tests.fixtures.mqtt import free_port, mosquitto_config
from tests.fixtures.procs import start, stop
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually


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


@pytest.mark.broker
def test_external_broker_over_tls_with_a_client_certificate_and_a_password(
    tmp_path: Path, tls_certs: TLSCerts
) -> None:
    pw = tmp_path / "passwd"
    passwd = find_binary("mosquitto_passwd") or "mosquitto_passwd"
    subprocess.run([passwd, "-b", "-c", str(pw), "edge", "s3cret"], check=True, timeout=10)
    os.chmod(pw, 0o600)
    pair = tls_certs.client("edge-mqtt")
    port = free_port()
    conf = tmp_path / "mosq.conf"
    conf.write_text(
        mosquitto_config(port).replace("allow_anonymous true", "allow_anonymous false")
        + f"cafile {tls_certs.ca}\ncertfile {tls_certs.server.cert}\nkeyfile {tls_certs.server.key}\n"
        + f"require_certificate true\npassword_file {pw}\n"
    )
    proc = start([find_binary("mosquitto") or "mosquitto", "-c", str(conf)], tmp_path / "mosq.log")
    tls = (str(tls_certs.ca), str(pair.cert), str(pair.key))
    cfg = MqttSection(
        mode="external", url=f"ssl://edge:s3cret@127.0.0.1:{port}", ca=tls[0], cert=tls[1], key=tls[2]
    )
    try:
        eventually(lambda: _accepts(port), 10, "mosquitto with TLS", proc=proc, log=tmp_path / "mosq.log")
        handle, finish = start_plane(
            tmp_path / "cache.db", {"device": [device()], "devicemodel": [MODEL]}, cfg
        )
        try:
            eventually(
                lambda: handle.status()["external"]["connected"],
                15,
                "bridge",
                proc=proc,
                log=tmp_path / "mosq.log",
            )
            st = handle.status()["external"]
            assert st["tls"] is True and "s3cret" not in st["url"]
            with clients("127.0.0.1", port) as make:
                dev = make("tls-dev", username="edge", password="s3cret", tls=tls)
                dev.sub("$hw/events/device/default/thermostat-01/twin/update/result")
                dev.pub(
                    "$hw/events/device/default/thermostat-01/twin/update", twin_update("t-1", temperature="1")
                )
                assert dev.get().json()["event_id"] == "t-1"
        finally:
            finish()
    finally:
        stop(proc)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
