"""Every frame of the recorded KubeEdge session decodes, re-encodes to equivalent JSON, and its
resource string parses; constructor output has the recorded shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.protocol import (
    Message,
    ack,
    decode,
    encode,
    encode_bytes,
    error_to,
    failure_status,
    keepalive,
    new_message,
    object_result,
    parse_resource,
    response_to,
    split_result,
)

# A copy of shared/kubeedge-wire/capture.jsonl (KubeEdge v1.23.0-beta session), kept in the repo so a
# fresh clone tests against it.
CAPTURE = Path(__file__).parent / "data" / "capture.jsonl"


def _frames() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


FRAMES = _frames()


def test_capture_is_complete() -> None:
    assert len(FRAMES) == 187


@pytest.mark.parametrize("rec", FRAMES, ids=lambda r: f"seq{r['seq']}")
def test_frame_roundtrips(rec: dict[str, Any]) -> None:
    raw = json.dumps(rec["msg"], separators=(",", ":"))
    msg = decode(raw)
    assert json.loads(encode(msg)) == rec["msg"]
    assert json.loads(encode_bytes(decode(raw.encode()))) == rec["msg"]
    assert Message.from_dict(msg.to_dict()) == msg


def test_every_resource_parses() -> None:
    seen = {r["msg"]["route"].get("resource") for r in FRAMES} - {None}
    assert len(seen) >= 15
    for s in seen:
        res = parse_resource(s)
        assert res is not None, s
        assert str(res) == s


def test_empty_stop_frame() -> None:
    stop = next(r["msg"] for r in FRAMES if r["msg"]["route"] == {})
    msg = decode(json.dumps(stop))
    assert msg == Message()
    empty = {"header": {"msg_id": "", "timestamp": 0}, "route": {}, "content": None}
    assert Message().to_dict() == stop == empty


def _shape(d: dict[str, Any]) -> tuple[Any, ...]:
    """Everything but ids and timestamps."""
    h = d["header"]
    return (sorted(h), d["route"], d["content"], "resourceversion" in h)


def _by(pred: Any) -> dict[str, Any]:
    return next(r["msg"] for r in FRAMES if pred(r))


def test_keepalive_matches_capture() -> None:
    rec = _by(lambda r: r["msg"]["route"].get("operation") == "keepalive")
    assert _shape(keepalive().to_dict()) == _shape(rec)


def test_ack_matches_capture_for_pods_and_devices() -> None:
    by_id = {r["msg"]["header"]["msg_id"]: r["msg"] for r in FRAMES}
    checked = 0
    for r in FRAMES:
        m = r["msg"]
        if r["dir"] != "edge->cloud" or m["content"] != "OK":
            continue
        orig = by_id.get(m["header"]["parent_msg_id"])
        if orig is None or orig["route"].get("source") not in ("edgecontroller", "devicecontroller"):
            continue
        o = Message.from_dict(orig)
        # edgecore's devicetwin answers devicecontroller inserts/deletes itself, as meta/twin
        twin = o.source == "devicecontroller" and o.operation in ("insert", "delete")
        mine = (ack(o, source="meta", group="twin") if twin else ack(o)).to_dict()
        assert _shape(mine) == _shape(m), (m, mine)
        assert mine["header"]["parent_msg_id"] == orig["header"]["msg_id"]
        checked += 1
    assert checked >= 40


def test_response_matches_capture() -> None:
    by_id = {r["msg"]["header"]["msg_id"]: r["msg"] for r in FRAMES}
    rec = _by(
        lambda r: (
            r["dir"] == "cloud->edge"
            and r["msg"]["route"].get("operation") == "response"
            and "resourceversion" not in r["msg"]["header"]
        )
    )
    req = Message.from_dict(by_id[rec["header"]["parent_msg_id"]])
    mine = response_to(req, rec["content"]).to_dict()
    assert _shape(mine) == _shape(rec)
    assert mine["header"]["parent_msg_id"] == req.msg_id


def test_new_message_and_error() -> None:
    m = new_message("edged", "meta", "query", "default/configmap/c")
    assert len(m.msg_id) == 36 and m.timestamp > 1_700_000_000_000
    assert not m.is_response
    e = error_to(m, "forbidden")
    assert e.operation == "error" and e.parent_msg_id == m.msg_id and e.content == "forbidden"
    assert e.is_response and e.resource == m.resource
    assert decode(encode(e)) == e


def test_split_result_on_every_recorded_response() -> None:
    errors = {}
    for r in FRAMES:
        m = r["msg"]
        if r["dir"] != "cloud->edge" or m["route"].get("operation") != "response":
            continue
        obj, status = split_result(m["content"])
        if status is not None:
            errors[r["seq"]] = (status["code"], status["reason"])
            assert obj == m["content"]["Object"]  # null, or the node edgecore sent (seq 151)
        elif isinstance(m["content"], dict) and "Object" in m["content"]:
            assert obj == m["content"]["Object"] and obj["metadata"]["name"]
        else:
            assert obj == m["content"]  # bare ConfigMap / TokenRequest / "OK"
    assert errors == {4: (404, "NotFound"), 20: (404, "NotFound"), 151: (409, "AlreadyExists")}


def test_object_result_reproduces_recorded_error() -> None:
    rec = next(r["msg"]["content"] for r in FRAMES if r["seq"] == 151)
    status = failure_status(
        409, "AlreadyExists", 'nodes "ke-edge-1" already exists', {"name": "ke-edge-1", "kind": "nodes"}
    )
    assert object_result(rec["Object"], status) == rec
    assert split_result({"Object": None, "Err": {}})[1]["code"] == 500  # type: ignore[index]
    assert split_result({"Object": {"a": 1}, "Err": None}) == ({"a": 1}, None)
