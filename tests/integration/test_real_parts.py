"""The real parts the suite relies on work here: Docker runs the local image, mosquitto relays MQTT."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import docker
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.procs import KEDGE, Spawner, log_tail, start, stop
from tests.fixtures.wait import WaitTimeout, eventually

pytestmark = pytest.mark.timeout(60)


def test_container_runs_execs_and_is_removed(
    docker_client: docker.DockerClient, busybox_image: str, docker_cleanup: dict[str, str]
) -> None:
    container = docker_client.containers.run(
        busybox_image, ["sleep", "30"], detach=True, labels=docker_cleanup, stop_signal="SIGKILL"
    )
    container.reload()
    assert container.status == "running"

    result = container.exec_run(["sh", "-c", "echo $((6 * 7)) from $(hostname)"])
    assert result.exit_code == 0
    assert result.output.decode().strip() == f"42 from {container.id[:12]}"
    assert container.exec_run(["false"]).exit_code == 1

    container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)


class Inbox:
    """Collects messages from a paho client's network thread."""

    def __init__(self) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.cond = threading.Condition()

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[mqtt.MQTTMessage]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"got {len(self.messages)} of {count} messages"
            )
            return list(self.messages)


def connected(host: str, port: int, inbox: Inbox | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    if inbox:
        client.on_message = inbox.on_message
    client.connect(host, port, keepalive=10)
    client.loop_start()
    return client


def subscribe(client: mqtt.Client, topic: str, qos: int) -> None:
    done = threading.Event()
    client.on_subscribe = lambda *_a: done.set()
    client.subscribe(topic, qos=qos)
    assert done.wait(5), f"no SUBACK for {topic}"


def test_mqtt_publish_receive_qos0_qos1_and_retained(mosquitto: tuple[str, int]) -> None:
    host, port = mosquitto
    inbox = Inbox()
    sub = connected(host, port, inbox)
    pub = connected(host, port)
    try:
        subscribe(sub, "kedge/test/#", qos=1)
        pub.publish("kedge/test/q0", b"zero", qos=0).wait_for_publish(5)
        info = pub.publish("kedge/test/q1", b"one", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        got = inbox.wait(2)
        assert sorted((m.topic, m.payload, m.qos) for m in got) == [
            ("kedge/test/q0", b"zero", 0),
            ("kedge/test/q1", b"one", 1),
        ]
        assert not any(m.retain for m in got)

        pub.publish("kedge/retained/state", b"on", qos=1, retain=True).wait_for_publish(5)
        late_inbox = Inbox()
        late = connected(host, port, late_inbox)
        try:
            subscribe(late, "kedge/retained/+", qos=1)
            [msg] = late_inbox.wait(1)
            assert (msg.topic, msg.payload, msg.retain) == ("kedge/retained/state", b"on", True)
        finally:
            late.loop_stop()
            late.disconnect()
    finally:
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()


def test_wait_for_fails_at_once_with_the_log_tail_when_the_process_exits(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    proc = start(["sh", "-c", "echo listening failed: port in use; exit 3"], log)
    began = time.monotonic()
    with pytest.raises(WaitTimeout) as failed:
        eventually(lambda: False, 30, proc=proc, log=log, what="the server")
    assert time.monotonic() - began < 5
    assert "exited with 3 before the server" in str(failed.value)
    assert "listening failed: port in use" in str(failed.value)


def test_stop_terminates_the_whole_process_group(tmp_path: Path) -> None:
    # The parent ignores SIGTERM (forcing the SIGKILL path); its child must not outlive it.
    script = "trap '' TERM; sleep 60 & echo $! > child.pid; wait"
    proc = start(["sh", "-c", script], tmp_path / "g.log", cwd=tmp_path)
    pid_file = tmp_path / "child.pid"
    child = int(
        eventually(lambda: pid_file.read_text().strip(), 10, proc=proc, log=tmp_path / "g.log", what="child")
    )
    began = time.monotonic()
    assert stop(proc, timeout=1) == -signal.SIGKILL
    assert time.monotonic() - began < 5
    eventually(lambda: not os.path.exists(f"/proc/{child}") or _zombie(child), 5, what="child to exit")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_kedge_subprocess_runs(spawn: Spawner) -> None:
    proc, log = spawn([*KEDGE, "version", "-o", "json"], "version")
    assert proc.wait(timeout=60) == 0, log_tail(log)
    assert '"kedgeVersion"' in log.read_text()
