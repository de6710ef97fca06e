"""The embedded MQTT 3.1.1 broker: asyncio streams around ``mqttcodec``, sessions, retained messages.

What devices rely on, and this serves: QoS 0 and 1 (QoS 2 from a client is acknowledged and
delivered at QoS 1 — SUBACK grants at most 1), retained messages, ``+``/``#`` wildcards with the
``$``-topic rule, keepalive (1.5 times the client's value, MQTT-3.1.2-24), will messages on any end
without DISCONNECT, clean and persistent sessions (a persistent session keeps its subscriptions,
unacknowledged QoS 1 messages — resent with DUP on reconnect — and up to ``max_queued`` QoS 1
messages that arrived while it was away). A client id in use takes the session over (MQTT-3.1.4-2).

Device PUBLISHes on ``$``-topics are accepted (amqtt's refusal is the reason this exists, design.md
§6); ``on_publish`` sees every client PUBLISH in-process, after it was routed, before the next
packet of that connection is read (so one device's messages are handled in order). ``publish()`` is
how the bridge answers: straight into the sessions, no client hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.edge.devices import mqttcodec as mc
from runtime.edge.devices.topics import Trie, matches, valid_filter, valid_topic
from runtime.edge.devices.trouble import Trouble

log = logging.getLogger("kedge.edge.mqtt")
OnPublish = Callable[[str, mc.Publish], Awaitable[None]]
_anon = itertools.count(1)


class Session:
    __slots__ = ("clean", "client_id", "conn", "inflight", "next_pid", "qos2_in", "queue", "subs")

    def __init__(self, client_id: str, clean: bool) -> None:
        self.client_id, self.clean = client_id, clean
        self.subs: dict[str, int] = {}
        self.inflight: dict[int, mc.Publish] = {}  # sent QoS 1, waiting for PUBACK
        self.queue: deque[mc.Publish] = deque()  # QoS 1 waiting for a connection or a free slot
        self.qos2_in: set[int] = set()
        self.next_pid = 0
        self.conn: Connection | None = None

    def pid(self) -> int:
        for _ in range(65535):
            self.next_pid = self.next_pid % 65535 + 1
            if self.next_pid not in self.inflight:
                return self.next_pid
        raise mc.ProtocolError("no free packet id")


class Connection:
    """One client's socket. Writes are gathered and sent once per loop iteration (a result and its
    PUBACK leave in one send: a syscall is the costliest step of an answer on a busy machine)."""

    __slots__ = ("buf", "closed", "graceful", "keepalive", "last_seen", "peer", "session", "will", "writer")

    def __init__(self, writer: asyncio.StreamWriter, peer: str) -> None:
        self.writer, self.peer = writer, peer
        self.buf: list[bytes] = []
        self.session: Session | None = None
        self.will: mc.Publish | None = None
        self.keepalive = 0
        self.last_seen = time.monotonic()
        self.graceful = False
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.buf:
            asyncio.get_running_loop().call_soon(self.flush)
        self.buf.append(data)

    def flush(self) -> None:
        if self.buf and not self.closed:
            self.writer.write(b"".join(self.buf))
        self.buf.clear()


class Broker:
    """``await start()`` binds every listener (port 0 → read ``addresses``); ``await stop()``."""

    def __init__(
        self,
        listeners: list[tuple[str, int]],
        *,
        on_publish: OnPublish | None = None,
        max_queued: int = 1000,
        max_inflight: int = 100,
        max_write_buffer: int = 4 * 1024 * 1024,
        trouble: Trouble | None = None,
    ) -> None:
        self.listeners = listeners
        self.on_publish = on_publish
        self.max_queued, self.max_inflight = max_queued, max_inflight
        self.max_write_buffer = max_write_buffer
        self.trouble = trouble or Trouble(log)
        self.addresses: list[tuple[str, int]] = []
        self.sessions: dict[str, Session] = {}
        self.subs: Trie[Session] = Trie()
        self.retained: dict[str, mc.Publish] = {}
        # topic -> its subscribers: devices use a few topics over and over; any (un)subscribe clears it
        self._targets: dict[str, list[tuple[Session, int]]] = {}
        self.counts: dict[str, int] = {"received": 0, "sent": 0, "dropped": 0, "protocolErrors": 0}
        self._servers: list[asyncio.Server] = []
        self._conns: set[Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for host, port in self.listeners:
            server = await asyncio.start_server(self._serve, host, port, limit=1 << 16)
            self._servers.append(server)
            for sock in server.sockets:
                addr = sock.getsockname()
                self.addresses.append((str(addr[0]), int(addr[1])))
        self._sweeper = asyncio.create_task(self._sweep(), name="mqtt-keepalive")

    async def failed(self) -> BaseException:
        """Returns (never raises) the error that broke the broker: its keepalive task died."""
        assert self._sweeper is not None, "start() first"
        try:
            await asyncio.shield(self._sweeper)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return exc
        return RuntimeError("the broker's keepalive task ended")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._sweeper
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            with contextlib.suppress(Exception):  # a broker stopped after a failure: close what closes
                conn.graceful = True  # our own shutdown: no will
                self._close(conn)
        self._conns.clear()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    def status(self) -> dict[str, Any]:
        return {
            "listeners": [f"{h}:{p}" for h, p in self.addresses],
            "clients": sum(1 for s in self.sessions.values() if s.conn is not None),
            "sessions": len(self.sessions),
            "subscriptions": self.subs.count,
            "retained": len(self.retained),
            **self.counts,
        }

    # ------------------------------------------------------------ routing

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Deliver a message from inside the edge (the bridge's answers) as a client PUBLISH would be."""
        self._route(mc.Publish(topic, payload, qos, retain))

    def _route(self, msg: mc.Publish) -> None:
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = mc.Publish(msg.topic, msg.payload, msg.qos, True)
            else:
                self.retained.pop(msg.topic, None)  # MQTT-3.3.1-10
        targets = self._targets.get(msg.topic)
        if targets is None:
            best: dict[Session, int] = {}
            for session, qos in self.subs.match(msg.topic):  # overlapping filters: one copy, highest QoS
                if best.get(session, -1) < qos:
                    best[session] = qos
            targets = list(best.items())
            if len(self._targets) > 10_000:
                self._targets.clear()
            self._targets[msg.topic] = targets
        for session, qos in targets:
            self._deliver(session, msg.topic, msg.payload, min(qos, msg.qos), False)

    def _deliver(self, s: Session, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        conn = s.conn
        if qos == 0:
            if conn is not None:
                conn.write(mc.encode_publish(topic, payload, 0, retain))
                self.counts["sent"] += 1
                self._check_backlog(conn)
            return
        msg = mc.Publish(topic, payload, 1, retain)
        if conn is None or len(s.inflight) >= self.max_inflight:
            s.queue.append(msg)
            if len(s.queue) > self.max_queued:
                s.queue.popleft()
                self.counts["dropped"] += 1
            return
        self._send_qos1(s, conn, msg)

    def _send_qos1(self, s: Session, conn: Connection, msg: mc.Publish) -> None:
        msg.packet_id = s.pid()
        s.inflight[msg.packet_id] = msg
        conn.write(mc.encode_publish(msg.topic, msg.payload, 1, msg.retain, msg.dup, msg.packet_id))
        self.counts["sent"] += 1
        self._check_backlog(conn)

    def _check_backlog(self, conn: Connection) -> None:
        transport = conn.writer.transport
        if transport.get_write_buffer_size() > self.max_write_buffer:
            self.trouble.note("slow-client", f"MQTT client {conn.peer} does not read; disconnected")
            self._close(conn)

    # ------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = Connection(writer, f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer))
        self._conns.add(conn)
        parser = mc.Reader()
        try:
            while not conn.closed:
                data = await reader.read(1 << 16)
                if not data:
                    break
                conn.last_seen = time.monotonic()
                for pkt in parser.feed(data):
                    await self._handle(conn, pkt)
                    if conn.closed:
                        break
        except mc.ProtocolError as exc:
            self.counts["protocolErrors"] += 1
            self.trouble.note("protocol", f"MQTT client {conn.peer}: {exc}; disconnected", level=logging.INFO)
        except (ConnectionError, OSError):
            pass
        finally:
            self._close(conn)
            self._conns.discard(conn)

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        with contextlib.suppress(Exception):
            conn.flush()  # what is still gathered, e.g. a refusing CONNACK
        conn.closed = True
        with contextlib.suppress(Exception):
            conn.writer.close()
        s = conn.session
        if s is None or s.conn is not conn:
            return
        s.conn = None
        if conn.will is not None and not conn.graceful:
            self._route(conn.will)
        if s.clean:
            self._drop_session(s)

    def _drop_session(self, s: Session) -> None:
        self._targets.clear()
        for f in s.subs:
            self.subs.remove(f, s)
        s.subs.clear()
        if self.sessions.get(s.client_id) is s:
            del self.sessions[s.client_id]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in list(self._conns):
                if conn.keepalive and now - conn.last_seen > conn.keepalive * 1.5:
                    self._close(conn)
                elif conn.session is None and now - conn.last_seen > 30:
                    self._close(conn)  # connected but never sent CONNECT

    async def _handle(self, conn: Connection, pkt: mc.Packet) -> None:
        if conn.session is None:
            if not isinstance(pkt, mc.Connect):
                raise mc.ProtocolError("first packet is not CONNECT")  # MQTT-3.1.0-1
            self._connect(conn, pkt)
            return
        s = conn.session
        if isinstance(pkt, mc.Publish):
            await self._client_publish(conn, s, pkt)
        elif isinstance(pkt, mc.Ack):
            self._client_ack(conn, s, pkt)
        elif isinstance(pkt, mc.Subscribe):
            self._subscribe(conn, s, pkt)
        elif isinstance(pkt, mc.Unsubscribe):
            self._targets.clear()
            for f in pkt.filters:
                if s.subs.pop(f, None) is not None:
                    self.subs.remove(f, s)
            conn.write(bytes([mc.UNSUBACK << 4, 2]) + pkt.packet_id.to_bytes(2, "big"))
        elif isinstance(pkt, mc.Simple) and pkt.kind == mc.PINGREQ:
            conn.write(mc.PINGRESP_BYTES)
        elif isinstance(pkt, mc.Simple) and pkt.kind == mc.DISCONNECT:
            conn.graceful = True
            self._close(conn)
        else:
            raise mc.ProtocolError("second CONNECT" if isinstance(pkt, mc.Connect) else "unexpected packet")

    def _connect(self, conn: Connection, c: mc.Connect) -> None:
        if c.level not in (3, 4):
            conn.write(mc.encode_connack(False, mc.CONNACK_BAD_PROTOCOL))
            raise mc.ProtocolError(f"protocol level {c.level} (this broker speaks MQTT 3.1/3.1.1)")
        client_id = c.client_id
        if not client_id:
            if not c.clean:
                conn.write(mc.encode_connack(False, mc.CONNACK_BAD_CLIENT_ID))
                raise mc.ProtocolError("empty client id with a persistent session")  # MQTT-3.1.3-8
            client_id = f"kedge-anon-{next(_anon)}"
        if c.will is not None and not valid_topic(c.will.topic):
            raise mc.ProtocolError("will topic is not a valid topic")
        old = self.sessions.get(client_id)
        if old is not None and old.conn is not None:
            self._close(old.conn)  # takeover; the old connection's will is published
            old = self.sessions.get(client_id)
        if old is not None and c.clean:
            self._drop_session(old)
            old = None
        present = old is not None
        s = old or Session(client_id, c.clean)
        s.clean = c.clean
        self.sessions[client_id] = s
        s.conn, conn.session = conn, s
        conn.keepalive, conn.will = c.keepalive, c.will
        conn.write(mc.encode_connack(present, mc.CONNACK_ACCEPTED))
        for msg in sorted(s.inflight.values(), key=lambda m: m.packet_id):  # MQTT-4.4.0-1
            conn.write(mc.encode_publish(msg.topic, msg.payload, 1, msg.retain, True, msg.packet_id))
        self._drain_queue(s, conn)

    def _drain_queue(self, s: Session, conn: Connection) -> None:
        while s.queue and len(s.inflight) < self.max_inflight and not conn.closed:
            self._send_qos1(s, conn, s.queue.popleft())

    async def _client_publish(self, conn: Connection, s: Session, p: mc.Publish) -> None:
        if not valid_topic(p.topic):
            raise mc.ProtocolError(f"PUBLISH to {p.topic!r}: not a valid topic name")
        self.counts["received"] += 1
        if p.qos == 2:
            conn.write(mc.encode_ack(mc.PUBREC, p.packet_id))
            if p.packet_id in s.qos2_in:
                return  # a resend of a QoS 2 message we already have (exactly once)
            s.qos2_in.add(p.packet_id)
        self._route(mc.Publish(p.topic, p.payload, min(p.qos, 1), p.retain))
        if self.on_publish is not None:
            await self.on_publish(s.client_id, p)
        if p.qos == 1:  # after the bridge handled it: a PUBACK means stored (and rides with the result)
            conn.write(mc.encode_ack(mc.PUBACK, p.packet_id))

    def _client_ack(self, conn: Connection, s: Session, a: mc.Ack) -> None:
        if a.kind == mc.PUBACK:
            if s.inflight.pop(a.packet_id, None) is not None:
                self._drain_queue(s, conn)
        elif a.kind == mc.PUBREL:
            s.qos2_in.discard(a.packet_id)
            conn.write(mc.encode_ack(mc.PUBCOMP, a.packet_id))
        # PUBREC/PUBCOMP: we never send QoS 2, so there is nothing to complete

    def _subscribe(self, conn: Connection, s: Session, sub: mc.Subscribe) -> None:
        self._targets.clear()
        codes: list[int] = []
        granted: list[tuple[str, int]] = []
        for f, qos in sub.filters:
            if qos < 0 or not valid_filter(f):
                codes.append(mc.SUBACK_FAILURE)
                continue
            qos = min(qos, 1)
            s.subs[f] = qos
            self.subs.add(f, s, qos)
            codes.append(qos)
            granted.append((f, qos))
        conn.write(mc.encode_suback(sub.packet_id, codes))
        for f, qos in granted:  # retained messages after the SUBACK (MQTT-3.3.1-6)
            for topic, msg in list(self.retained.items()):
                if matches(f, topic):
                    self._deliver(s, topic, msg.payload, min(qos, msg.qos), True)
