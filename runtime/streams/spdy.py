"""SPDY/3.1 framing without I/O: frames ⇄ bytes, header blocks with zlib and the SPDY/3 dictionary,
and flow-control window accounting.

What kubectl, client-go and the kubelet speak for exec/attach/port-forward (moby/spdystream): every
control frame of SPDY/3 plus DATA; header names are lower case, one entry per name, several values
joined by NUL. Each direction of a connection has ONE zlib context (a `FrameParser` decompresses what
the peer sent, a `FrameWriter` compresses what we send), so frames carrying headers must be encoded in
the order they are written.

Errors: every malformed, truncated-at-close or oversized input raises `SpdyError` (with the RST_STREAM
or GOAWAY status that answers it); nothing here blocks or loops on bad input.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Final

VERSION: Final = 3
DEFAULT_WINDOW: Final = 64 * 1024  # the initial stream and session window of SPDY/3.1
MAX_WINDOW: Final = 2**31 - 1
MAX_DATA_LENGTH: Final = 2**24 - 1  # the 24-bit length field
MAX_CONTROL_LENGTH: Final = 1 << 20  # what we accept for one control frame (headers are small)
MAX_HEADER_BYTES: Final = 1 << 20  # decompressed header block cap (a zlib bomb stops here)

# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN: Final = 0x01
FLAG_UNIDIRECTIONAL: Final = 0x02
FLAG_CLEAR_SETTINGS: Final = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED, FRAME_TOO_LARGE = 7, 8, 9, 11
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2
SETTINGS_INITIAL_WINDOW_SIZE: Final = 7

Headers = tuple[tuple[str, str], ...]


class SpdyError(Exception):
    """A SPDY protocol violation. `status` is the RST_STREAM status (stream_id != 0) or the GOAWAY
    status to answer it with (stream_id == 0: the whole connection is unusable)."""

    def __init__(self, message: str, *, status: int = PROTOCOL_ERROR, stream_id: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.stream_id = stream_id


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    values: tuple[tuple[int, int], ...]  # (id, value); per-entry flags are not kept
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int  # 0: the session window (SPDY/3.1)
    delta: int


Frame = DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary (draft 3, 2.6.10.1): length-prefixed words, then a raw tail."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status 200|OK version HTTP/1.1 url "
        "public set-cookie keep-alive origin"
    ).split(" ")
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    out = bytearray()
    for word in words:
        w = word.replace("|", " ").encode()
        out += struct.pack(">I", len(w)) + w
    return bytes(out) + tail.encode()


DICTIONARY: Final = _dictionary()


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block: count, then (length, name, length, value) pairs."""
    out = bytearray(struct.pack(">I", len(headers)))
    for name, value in headers:
        n, v = name.lower().encode(), value.encode()
        out += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
    return bytes(out)


def decode_header_block(raw: bytes, stream_id: int = 0) -> Headers:
    def bad(why: str) -> SpdyError:
        return SpdyError(f"bad header block: {why}", stream_id=stream_id)

    if len(raw) < 4:
        raise bad("truncated count")
    (count,) = struct.unpack_from(">I", raw)
    if count > len(raw) // 8:  # each pair takes at least 8 bytes: a cheap bound before looping
        raise bad(f"{count} pairs in {len(raw)} bytes")
    pos, out, seen = 4, [], set()
    for _ in range(count):
        parts = []
        for _what in ("name", "value"):
            if pos + 4 > len(raw):
                raise bad("truncated length")
            (length,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise bad("truncated string")
            parts.append(raw[pos : pos + length])
            pos += length
        try:
            name, value = parts[0].decode(), parts[1].decode()
        except UnicodeDecodeError as exc:
            raise bad("not UTF-8") from exc
        if not name or name != name.lower():
            raise bad(f"name {name!r} empty or not lower case")
        if name in seen:
            raise bad(f"duplicate name {name!r}")
        seen.add(name)
        out.append((name, value))
    if pos != len(raw):
        raise bad("trailing bytes")
    return tuple(out)


@dataclass
class FlowWindow:
    """One flow-control window (a stream's or the session's), seen from one side.

    Sending: `available` is what the peer still lets us send; `spend` on each DATA frame, `grow` on its
    WINDOW_UPDATE. Receiving: `receive` on each DATA frame (raises FLOW_CONTROL_ERROR past the window),
    `consume` as the application takes the bytes; it returns the WINDOW_UPDATE delta to send (batched to
    half a window) or 0."""

    size: int = DEFAULT_WINDOW
    available: int = DEFAULT_WINDOW
    unacked: int = 0  # receive side: consumed, not yet announced

    def spend(self, n: int) -> None:
        self.available -= n

    def grow(self, delta: int, stream_id: int = 0) -> None:
        if delta <= 0 or self.available + delta > MAX_WINDOW:
            raise SpdyError(
                f"window update of {delta} overflows", status=FLOW_CONTROL_ERROR, stream_id=stream_id
            )
        self.available += delta

    def resize(self, new_size: int) -> None:  # SETTINGS_INITIAL_WINDOW_SIZE applies the difference
        self.available += new_size - self.size
        self.size = new_size

    def receive(self, n: int, stream_id: int = 0, strict: bool = True) -> None:
        if strict and n > self.available:
            raise SpdyError(
                f"{n} bytes beyond a window of {self.available}",
                status=FLOW_CONTROL_ERROR,
                stream_id=stream_id,
            )
        self.available -= n

    def consume(self, n: int) -> int:
        self.unacked += n
        if self.unacked < self.size // 2:
            return 0
        delta, self.unacked = self.unacked, 0
        self.available += delta
        return delta


@dataclass
class FrameParser:
    """Bytes in, frames out: `feed` what arrived, then iterate `frames()` (stops at an incomplete
    frame). `eof()` raises if the input ended inside a frame."""

    max_data: int = MAX_DATA_LENGTH
    _buf: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def feed(self, data: bytes) -> None:
        self._buf += data

    def eof(self) -> None:
        if self._buf:
            raise SpdyError(f"connection closed inside a frame ({len(self._buf)} bytes pending)")

    def frames(self) -> list[Frame]:
        out = []
        while len(self._buf) >= 8:
            first, second = struct.unpack_from(">II", self._buf)
            length, flags = second & 0xFFFFFF, second >> 24
            control = bool(first & 0x80000000)
            if (control and length > MAX_CONTROL_LENGTH) or (not control and length > self.max_data):
                raise SpdyError(f"frame of {length} bytes is too large", status=FRAME_TOO_LARGE)
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            if control:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}", status=UNSUPPORTED_VERSION)
                frame = self._control(kind, flags, payload)
                if frame is not None:
                    out.append(frame)
            else:
                if first == 0:
                    raise SpdyError("DATA frame on stream 0")
                out.append(DataFrame(first, payload, bool(flags & FLAG_FIN)))
        return out

    def _headers(self, block: bytes, stream_id: int) -> Headers:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BYTES)
        except zlib.error as exc:  # the context is now unusable: a connection error
            raise SpdyError(f"header decompression failed: {exc}") from exc
        if self._inflate.unconsumed_tail:
            raise SpdyError(f"header block larger than {MAX_HEADER_BYTES} bytes", status=FRAME_TOO_LARGE)
        return decode_header_block(raw, stream_id)

    def _control(self, kind: int, flags: int, p: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)

        def need(n: int, exact: bool = True) -> None:
            if len(p) < n or (exact and len(p) != n):
                raise SpdyError(f"control frame type {kind} with {len(p)} bytes")

        if kind == SYN_STREAM:
            need(10, exact=False)
            sid, assoc, pri = struct.unpack_from(">IIB", p)
            sid &= MAX_WINDOW
            if sid == 0:
                raise SpdyError("SYN_STREAM for stream 0")
            headers = self._headers(p[10:], sid)
            return SynStream(
                sid, headers, assoc & MAX_WINDOW, pri >> 5, fin, bool(flags & FLAG_UNIDIRECTIONAL)
            )
        if kind in (SYN_REPLY, HEADERS):
            need(4, exact=False)
            sid = struct.unpack_from(">I", p)[0] & MAX_WINDOW
            headers = self._headers(p[4:], sid)
            return SynReply(sid, headers, fin) if kind == SYN_REPLY else HeadersFrame(sid, headers, fin)
        if kind == RST_STREAM:
            need(8)
            sid, status = struct.unpack(">II", p)
            return RstStream(sid & MAX_WINDOW, status)
        if kind == SETTINGS:
            need(4, exact=False)
            (count,) = struct.unpack_from(">I", p)
            need(4 + 8 * count)
            values = tuple(
                (
                    struct.unpack_from(">I", p, 4 + 8 * i)[0] & 0xFFFFFF,
                    struct.unpack_from(">I", p, 8 + 8 * i)[0],
                )
                for i in range(count)
            )
            return Settings(values, bool(flags & FLAG_CLEAR_SETTINGS))
        if kind == PING:
            need(4)
            return Ping(struct.unpack(">I", p)[0])
        if kind == GOAWAY:
            need(8)
            last, status = struct.unpack(">II", p)
            return GoAway(last & MAX_WINDOW, status)
        if kind == WINDOW_UPDATE:
            need(8)
            sid, delta = struct.unpack(">II", p)
            return WindowUpdate(sid & MAX_WINDOW, delta & MAX_WINDOW)
        return None  # unknown control types are ignored (draft 3, 2.2.1)


@dataclass
class FrameWriter:
    """Frames in, bytes out; owns this direction's header compression context."""

    _deflate: zlib._Compress = field(
        default_factory=lambda: zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zdict=DICTIONARY
        )
    )

    def _block(self, headers: Headers) -> bytes:
        return self._deflate.compress(encode_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            if not 0 < frame.stream_id <= MAX_WINDOW or len(frame.data) > MAX_DATA_LENGTH:
                raise SpdyError("DATA frame out of range", stream_id=frame.stream_id)
            return struct.pack(">II", frame.stream_id, (frame.fin << 24) | len(frame.data)) + frame.data
        fin = FLAG_FIN if getattr(frame, "fin", False) else 0
        if isinstance(frame, SynStream):
            flags = fin | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id, frame.priority << 5, 0)
            return _control(SYN_STREAM, flags, body + self._block(frame.headers))
        if isinstance(frame, SynReply):
            return _control(SYN_REPLY, fin, struct.pack(">I", frame.stream_id) + self._block(frame.headers))
        if isinstance(frame, HeadersFrame):
            return _control(HEADERS, fin, struct.pack(">I", frame.stream_id) + self._block(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.values))
            body += b"".join(struct.pack(">II", i & 0xFFFFFF, v) for i, v in frame.values)
            return _control(SETTINGS, FLAG_CLEAR_SETTINGS if frame.clear else 0, body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id, frame.status))
        return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body
