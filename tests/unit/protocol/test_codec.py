"""Malformed input: every kind of garbage yields MalformedMessage/FrameTooLarge, nothing else escapes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import runtime.protocol as protocol
from runtime.errors import ProtocolError
from runtime.protocol import (
    MAX_FRAME_BYTES,
    FrameTooLarge,
    MalformedMessage,
    Message,
    decode,
    encode,
    new_message,
)

CAPTURE = Path(__file__).parent / "data" / "capture.jsonl"
FRAMES = [json.loads(line)["msg"] for line in CAPTURE.read_text().splitlines()]
GOOD = '{"header":{"msg_id":"a","timestamp":1},"route":{"source":"s"},"content":null}'

GARBAGE: list[tuple[str, str | bytes]] = [
    ("empty", b""),
    ("truncated", GOOD[:-5]),
    ("truncated-bytes", GOOD.encode()[:30]),
    ("not json", "hello"),
    ("top-level array", "[1,2]"),
    ("top-level null", "null"),
    ("top-level number", "42"),
    ("top-level string", '"x"'),
    ("missing header", '{"route":{},"content":null}'),
    ("missing route", '{"header":{"msg_id":"a","timestamp":1},"content":null}'),
    ("header array", '{"header":[],"route":{}}'),
    ("header null", '{"header":null,"route":{}}'),
    ("route string", '{"header":{},"route":"x"}'),
    ("msg_id int", '{"header":{"msg_id":5,"timestamp":1},"route":{}}'),
    ("msg_id null", '{"header":{"msg_id":null,"timestamp":1},"route":{}}'),
    ("parent_msg_id list", '{"header":{"parent_msg_id":[],"timestamp":1},"route":{}}'),
    ("timestamp string", '{"header":{"msg_id":"a","timestamp":"1"},"route":{}}'),
    ("timestamp bool", '{"header":{"msg_id":"a","timestamp":true},"route":{}}'),
    ("timestamp fraction", '{"header":{"msg_id":"a","timestamp":1.5},"route":{}}'),
    ("timestamp beyond int64", '{"header":{"timestamp":99999999999999999999},"route":{}}'),
    ("resourceversion int", '{"header":{"resourceversion":12},"route":{}}'),
    ("sync string", '{"header":{"sync":"true"},"route":{}}'),
    ("route field int", '{"header":{},"route":{"operation":1}}'),
    ("route resource null", '{"header":{},"route":{"resource":null}}'),
    ("route source object", '{"header":{},"route":{"source":{}}}'),
    ("non-utf8", b'{"header":{"msg_id":"\xff\xfe"},"route":{}}'),
    ("lone surrogate str", '{"header":{"msg_id":"\ud800"},"route":{}}'),
    ("NaN", '{"header":{"timestamp":NaN},"route":{}}'),
    ("deep nesting", '{"header":{},"route":{},"content":' + "[" * 5000 + "]" * 5000 + "}"),
    ("trailing garbage", GOOD + "x"),
]


@pytest.mark.parametrize(("name", "data"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_is_malformed(name: str, data: str | bytes) -> None:
    with pytest.raises(MalformedMessage) as ei:
        decode(data)
    assert isinstance(ei.value, ProtocolError) and str(ei.value)


def test_error_names_the_field() -> None:
    with pytest.raises(MalformedMessage, match=r"route\.operation must be a string"):
        decode('{"header":{},"route":{"operation":1}}')
    with pytest.raises(MalformedMessage, match=r"header\.timestamp"):
        decode('{"header":{"timestamp":"x"},"route":{}}')
    with pytest.raises(MalformedMessage, match="must be a JSON object, not array"):
        decode("[]")


def test_oversized_bytes_and_str() -> None:
    big = GOOD.replace("null}", '"' + "x" * 2000 + '"}')
    assert decode(big, limit=len(big)).content == "x" * 2000
    with pytest.raises(FrameTooLarge) as ei:
        decode(big.encode(), limit=len(big) - 1)
    assert (ei.value.size, ei.value.limit) == (len(big), len(big) - 1)
    # a str is measured in UTF-8 bytes, not characters
    wide = GOOD.replace("null}", '"' + "é" * 1000 + '"}')
    with pytest.raises(FrameTooLarge):
        decode(wide, limit=len(wide) + 10)
    assert decode(wide, limit=len(wide.encode())).content == "é" * 1000


def test_default_limit_is_8_mib() -> None:
    assert MAX_FRAME_BYTES == 8 * 1024 * 1024
    pad = "x" * (MAX_FRAME_BYTES - len(GOOD))
    ok = GOOD.replace('"s"', '"s' + pad[:-10] + '"')
    assert len(ok) <= MAX_FRAME_BYTES
    decode(ok)
    with pytest.raises(FrameTooLarge):
        decode(ok + " " * (MAX_FRAME_BYTES - len(ok) + 1))


def test_non_text_input_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        decode(123)  # type: ignore[arg-type]
    assert decode(bytearray(GOOD.encode())).msg_id == "a"


def test_tolerated_shapes() -> None:
    # absent optional fields, unknown keys, unknown route values, float-typed integral timestamp
    m = decode('{"header":{},"route":{}}')
    assert m == Message()
    m = decode(
        '{"header":{"msg_id":"a","timestamp":1.7e12,"extra":1},"route":{"operation":"zap",'
        '"group":"weird","resource":"a/b/c/d/e","x":2},"content":[1,2],"more":true}'
    )
    assert (m.timestamp, m.operation, m.group, m.resource, m.content) == (
        1_700_000_000_000,
        "zap",
        "weird",
        "a/b/c/d/e",
        [1, 2],
    )
    m = decode('{"header":{"timestamp":1,"sync":true,"type":"t"},"route":{"destination":"d"},"content":1}')
    assert m.sync and m.message_type == "t" and m.destination == "d"
    assert json.loads(encode(m)) == {
        "header": {"msg_id": "", "timestamp": 1, "sync": True, "type": "t"},
        "route": {"destination": "d"},
        "content": 1,
    }


def test_big_integers_in_content() -> None:
    # Go reads them as float64; so do we, and encoding one we built ourselves still works.
    big = decode('{"header":{},"route":{},"content":123456789012345678901234567890}')
    assert big.content == 1.2345678901234568e29
    m = new_message("a", "b", "c", "d", {"n": 2**70})
    assert json.loads(encode(m))["content"] == {"n": 2**70}


def test_unencodable_content_is_typed() -> None:
    with pytest.raises(MalformedMessage, match="cannot encode"):
        encode(new_message("a", "b", "c", "d", {"x": object()}))


def test_fuzz_mutations_only_typed_errors() -> None:
    rng = random.Random(20261128)
    raws = [json.dumps(f, separators=(",", ":")).encode() for f in FRAMES]
    accepted = rejected = 0
    for _ in range(4000):
        b = bytearray(rng.choice(raws))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(b)) if b else 0
            if op < 0.4 and b:
                b[pos] = rng.randrange(256)
            elif op < 0.6 and b:
                del b[pos : pos + rng.randint(1, 8)]
            elif op < 0.8:
                b[pos:pos] = bytes(rng.choice(b'{}[]":,0123456789-.etrufaln\\ \xff\xc3'))
            else:
                b = b[: rng.randrange(len(b) + 1)]
        try:
            m = decode(bytes(b), limit=1 << 20)
        except MalformedMessage:
            rejected += 1
            continue
        accepted += 1
        assert isinstance(m.msg_id, str) and isinstance(m.timestamp, int) and isinstance(m.resource, str)
        decode(encode(m))  # whatever we accept, we can re-send
    assert accepted > 50 and rejected > 1000, (accepted, rejected)


def test_public_names_match_all() -> None:
    # Submodules become package attributes once anything imports them (delivery is imported by
    # the channel, not re-exported), so compare only names that are not submodules.
    import types

    public = {
        n
        for n in dir(protocol)
        if not n.startswith("_") and not isinstance(getattr(protocol, n), types.ModuleType)
    }
    assert public == set(protocol.__all__)
