"""The bridge as a paho-mqtt client of an existing broker (``--mqtt external=URL``), paho on its thread.

paho's network loop runs on its own thread (design.md §3: blocking libraries behind a thin adapter);
messages cross to the event loop with ``call_soon_threadsafe`` in arrival order. paho reconnects by
itself (1 s doubling to 30 s); every (re)connection subscribes again and calls ``on_connected`` so the
plane re-publishes pending deltas. A lost broker is said once and counted (``Trouble``), never a log
line per retry. URL: ``tcp://host:port`` or ``mqtt://``; ``ssl://``, ``tls://`` or ``mqtts://`` for
TLS (with ``mqtt.ca``/``cert``/``key``); ``user:password@`` in the URL or ``mqtt.username``/``password``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from runtime.edge.devices.trouble import Trouble
from runtime.errors import ConfigError

log = logging.getLogger("kedge.edge.mqtt")
TLS_SCHEMES = ("ssl", "tls", "mqtts")


def parse_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, username, password) of a broker URL; ConfigError names what is wrong."""
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.scheme not in ("tcp", "mqtt", *TLS_SCHEMES) or not parts.hostname:
        raise ConfigError(f"mqtt.url {url!r}: expected tcp://host:port or ssl://host:port")
    tls = parts.scheme in TLS_SCHEMES
    return parts.hostname, parts.port or (8883 if tls else 1883), tls, parts.username, parts.password


class ExternalBroker:
    def __init__(
        self,
        url: str,
        client_id: str,
        subscriptions: list[str],
        on_message: Callable[[str, bytes], None],
        *,
        username: str = "",
        password: str = "",
        ca: str = "",
        cert: str = "",
        key: str = "",
        on_connected: Callable[[], None] | None = None,
        trouble: Trouble | None = None,
        keepalive: int = 30,
    ) -> None:
        self.host, self.port, self.tls, url_user, url_pass = parse_url(url)
        self.url = url.split("@")[-1] if "@" in url else url  # never show a password in status
        self.username, self.password = username or url_user or "", password or url_pass or ""
        self.ca, self.cert, self.key = ca, cert, key
        self.client_id, self.subscriptions = client_id, subscriptions
        self.on_message, self.on_connected = on_message, on_connected
        self.trouble = trouble or Trouble(log)
        self.keepalive = keepalive
        self.connected = False
        self.connects = 0
        self.since: float | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca or None)
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key or None)
        return ctx

    async def start(self) -> None:
        import paho.mqtt.client as paho

        self._loop = asyncio.get_running_loop()
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        if self.tls:
            client.tls_set_context(self._tls_context())
        client.reconnect_delay_set(1, 30)
        # paho holds back QoS 1 messages beyond 20 unacknowledged ones; the bridge answers three per
        # device update, so that cap queues answers behind each other (seconds of latency at 500/s)
        client.max_inflight_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.enable_logger(logging.getLogger("kedge.edge.mqtt.paho"))
        logging.getLogger("kedge.edge.mqtt.paho").setLevel(logging.CRITICAL)  # errors go through Trouble
        self._client = client
        client.connect_async(self.host, self.port, keepalive=self.keepalive)
        client.loop_start()

    async def stop(self) -> None:
        client = self._client
        if client is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown, client)
        self._client = None

    @staticmethod
    def _shutdown(client: Any) -> None:
        client.disconnect()
        client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        if self._client is not None:
            self._client.publish(topic, payload, qos=1)

    # paho thread ------------------------------------------------------------

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.trouble.note("external-broker", f"MQTT broker {self.url}: connection refused: {reason}")
            return
        sock = client.socket()
        if sock is not None:  # paho leaves Nagle on: a result and its document would wait 40 ms for an ACK
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe([(t, 1) for t in self.subscriptions])
        self.connected, self.since = True, time.time()
        self.connects += 1
        self.trouble.clear("external-broker", f"MQTT broker {self.url}: connected again")
        if self.on_connected is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_connected)

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected = False
        if self._client is not None:
            self.trouble.note(
                "external-broker", f"MQTT broker {self.url}: connection lost ({reason}); reconnecting"
            )

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        self.trouble.note("external-broker", f"MQTT broker {self.url}: cannot connect; retrying")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_message, msg.topic, bytes(msg.payload))

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "tls": self.tls,
            "connected": self.connected,
            "since": self.since,
            "connects": self.connects,
            "subscriptions": len(self.subscriptions),
        }
