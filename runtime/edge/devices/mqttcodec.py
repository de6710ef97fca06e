"""MQTT 3.1.1 packets as bytes in, packets out — no sockets, no asyncio (the sans-I/O half of the broker).

Why our own codec: the embedded broker must accept device PUBLISH on ``$hw/…`` topics, which amqtt
(≥ 0.11.2) refuses (design.md §6), and serving MQTT in-process lets the bridge handle twin topics at
publish time without a loopback client. The codec covers what MQTT 3.1.1 (protocol level 4, and 3.1's
level 3 CONNECT) defines: CONNECT/CONNACK, PUBLISH with QoS 0/1/2 acknowledgements, SUBSCRIBE,
UNSUBSCRIBE, PING and DISCONNECT. ``Reader.feed(data)`` yields whole packets; ``encode_*`` build them.
A malformed packet raises ``ProtocolError``: the broker closes that connection (MQTT-4.8.0-1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL = 1
CONNACK_BAD_CLIENT_ID = 2
CONNACK_BAD_AUTH = 4
SUBACK_FAILURE = 0x80
MAX_PACKET = 1 << 20  # a device's message is small; 1 MiB bounds what one client can make us buffer


class ProtocolError(Exception):
    """The peer broke MQTT 3.1.1; the connection must be closed."""


@dataclass(slots=True)
class Connect:
    client_id: str
    clean: bool
    keepalive: int
    level: int
    username: str | None = None
    password: bytes | None = None
    will: Publish | None = None


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    filters: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    filters: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL, PUBCOMP (the packet id is all they carry)."""

    kind: int
    packet_id: int


@dataclass(slots=True)
class Simple:
    """PINGREQ, PINGRESP, DISCONNECT, CONNACK (no variable part the broker needs)."""

    kind: int


Packet = Connect | Publish | Subscribe | Unsubscribe | Ack | Simple


def _str(buf: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _bin(buf, pos)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("string is not UTF-8") from exc
    if "\x00" in text:
        raise ProtocolError("string contains U+0000")
    return text, pos


def _bin(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(buf):
        raise ProtocolError("truncated length")
    (n,) = struct.unpack_from("!H", buf, pos)
    end = pos + 2 + n
    if end > len(buf):
        raise ProtocolError("truncated field")
    return buf[pos + 2 : end], end


def _u16(buf: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(buf):
        raise ProtocolError("truncated packet id")
    return struct.unpack_from("!H", buf, pos)[0], pos + 2


def _decode_connect(body: bytes) -> Connect:
    name, pos = _str(body, 0)
    if pos + 4 > len(body):
        raise ProtocolError("truncated CONNECT")
    level, flags = body[pos], body[pos + 1]
    (keepalive,) = struct.unpack_from("!H", body, pos + 2)
    pos += 4
    if name not in ("MQTT", "MQIsdp"):
        raise ProtocolError(f"unknown protocol name {name!r}")
    if flags & 0x01:
        raise ProtocolError("reserved CONNECT flag set")
    client_id, pos = _str(body, pos)
    will = None
    if flags & 0x04:
        topic, pos = _str(body, pos)
        message, pos = _bin(body, pos)
        will = Publish(topic, message, (flags >> 3) & 0x03, bool(flags & 0x20))
        if will.qos > 2:
            raise ProtocolError("will QoS 3")
    username = password = None
    if flags & 0x80:
        username, pos = _str(body, pos)
    if flags & 0x40:
        password, pos = _bin(body, pos)
    return Connect(client_id, bool(flags & 0x02), keepalive, level, username, password, will)


def _decode(kind: int, flags: int, body: bytes) -> Packet:
    if kind == PUBLISH:
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        topic, pos = _str(body, 0)
        pid = 0
        if qos:
            pid, pos = _u16(body, pos)
        return Publish(topic, body[pos:], qos, bool(flags & 0x01), bool(flags & 0x08), pid)
    if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        return Ack(kind, _u16(body, 0)[0])
    if kind == SUBSCRIBE:
        pid, pos = _u16(body, 0)
        sub = Subscribe(pid)
        while pos < len(body):
            topic, pos = _str(body, pos)
            if pos >= len(body):
                raise ProtocolError("SUBSCRIBE without QoS byte")
            sub.filters.append((topic, body[pos] & 0x03 if body[pos] <= 2 else -1))
            pos += 1
        if not sub.filters:
            raise ProtocolError("SUBSCRIBE without a filter")  # MQTT-3.8.3-3
        return sub
    if kind == UNSUBSCRIBE:
        pid, pos = _u16(body, 0)
        unsub = Unsubscribe(pid)
        while pos < len(body):
            topic, pos = _str(body, pos)
            unsub.filters.append(topic)
        return unsub
    if kind == CONNECT:
        return _decode_connect(body)
    if kind in (PINGREQ, PINGRESP, DISCONNECT, CONNACK):
        return Simple(kind)
    raise ProtocolError(f"packet type {kind} not allowed from a client")


class Reader:
    """Accumulates bytes; ``feed`` returns the packets completed so far."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        while len(buf) >= 2:
            mult, length, pos = 1, 0, 1
            while True:
                if pos >= len(buf):
                    return out  # length not complete yet
                byte = buf[pos]
                length += (byte & 0x7F) * mult
                pos += 1
                if not byte & 0x80:
                    break
                mult *= 128
                if mult > 128**3:
                    raise ProtocolError("remaining length over 4 bytes")
            if length > MAX_PACKET:
                raise ProtocolError(f"packet of {length} bytes is over the {MAX_PACKET} limit")
            if len(buf) < pos + length:
                return out
            first = buf[0]
            body = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            kind, flags = first >> 4, first & 0x0F
            if kind in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) and flags != 0x02:
                raise ProtocolError(f"bad fixed-header flags for packet type {kind}")  # MQTT-3.8.1-1
            out.append(_decode(kind, flags, body))
        return out


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _s(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def encode_publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False, dup: bool = False,
                   packet_id: int = 0) -> bytes:  # fmt: skip
    var = _s(topic) + (struct.pack("!H", packet_id) if qos else b"")
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    return bytes([(PUBLISH << 4) | flags]) + _length(len(var) + len(payload)) + var + payload


def encode_connack(session_present: bool, code: int) -> bytes:
    return bytes([CONNACK << 4, 2, 1 if session_present and code == 0 else 0, code])


def encode_ack(kind: int, packet_id: int) -> bytes:
    return bytes([(kind << 4) | (0x02 if kind == PUBREL else 0), 2]) + struct.pack("!H", packet_id)


def encode_suback(packet_id: int, codes: list[int]) -> bytes:
    return bytes([SUBACK << 4]) + _length(2 + len(codes)) + struct.pack("!H", packet_id) + bytes(codes)


PINGRESP_BYTES = bytes([PINGRESP << 4, 0])
