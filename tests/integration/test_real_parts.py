"""The real parts the suite relies on work here: Docker runs the local image, mosquitto relays MQTT."""

from __future__ import annotations

import threading
import uuid

import docker
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

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
