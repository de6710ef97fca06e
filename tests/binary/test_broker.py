"""The embedded MQTT broker of `kedge edge run` works from the executable (issue 14): build.spec
collects it, and a device client's retained QoS 1 message reaches a subscriber through it."""

from __future__ import annotations

from pathlib import Path

from tests.edge.test_status import closed_port
from tests.fixtures.e2e import free_port
from tests.fixtures.edge import make_edge_root
from tests.fixtures.procs import Spawner, executable
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually
from tests.integration.test_real_parts import Inbox, connected, subscribe


def test_the_embedded_broker_serves_from_the_executable(
    tls_certs: TLSCerts, tmp_path: Path, spawn: Spawner
) -> None:
    exe = executable()
    port = free_port()
    make_edge_root(tmp_path, tls_certs, "bin-mqtt", f"127.0.0.1:{closed_port()}")
    sets = ["--set", "mqtt.mode=embedded", "--set", "mqtt.bind=127.0.0.1", "--set", f"mqtt.port={port}"]
    proc, log = spawn([str(exe), "edge", "run", "--root", str(tmp_path), "--no-pods", *sets], "edge")
    pub = eventually(
        lambda: connected("127.0.0.1", port), 30, proc=proc, log=log, what="the embedded broker to accept"
    )
    try:
        info = pub.publish("kedge/test/bin", b"from-a-device", qos=1, retain=True)
        info.wait_for_publish(5)
        inbox = Inbox()
        sub = connected("127.0.0.1", port, inbox)
        try:
            subscribe(sub, "kedge/test/#", 1)
            (msg,) = inbox.wait(1)
            assert (msg.topic, msg.payload, msg.retain) == ("kedge/test/bin", b"from-a-device", True)
        finally:
            sub.loop_stop()
            sub.disconnect()
    finally:
        pub.loop_stop()
        pub.disconnect()
