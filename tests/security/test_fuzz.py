"""Fuzz targets (hypothesis): each parser either returns or raises its documented typed error.

Bounded: `max_examples` and a `deadline` per target, the whole file well under a minute. A crash
hypothesis finds becomes a regular test (see test_paths.py and the table in docs/reliability.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.apiserver.handlers.reads import decode_continue
from runtime.apiserver.http import protobuf
from runtime.apiserver.http.context import ApiRequest, Target
from runtime.apiserver.http.status_errors import StatusError
from runtime.apiserver.patch.jsonpatch import PatchError, apply_json_patch, apply_merge_patch
from runtime.apiserver.patch.strategic import apply_strategic_merge_patch
from runtime.apiserver.registry.fieldselectors import FIELD_SPECS, SelectorError, parse_field_selector
from runtime.apiserver.registry.resources import builtin_types
from runtime.apiserver.registry.selectors import label_selector_from_dict, parse_label_selector
from runtime.edge.devices import twins
from runtime.protocol import MalformedMessage, decode, encode

FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
# selector text from the alphabet the grammar cares about, plus anything
SEL_CHARS = st.sampled_from([*list("ab=!,()<> \\.-_/xyz09"), "in", "notin", "gt", "lt", "==", "!="])
SEL = st.lists(SEL_CHARS, max_size=24).map("".join) | st.text(max_size=24)
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}},
    "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]},
}
GOOD_FRAME = '{"header":{"msg_id":"a","timestamp":1},"route":{"source":"s","resource":"r"},"content":null}'


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300) | JSON.map(json.dumps))
def test_message_codec(data: Any) -> None:
    try:
        m = decode(data, limit=256)
    except MalformedMessage:  # FrameTooLarge is one
        return
    decode(encode(m))  # what is accepted can be sent again


@FUZZ
@given(JSON)
def test_message_codec_with_fuzzed_parts(part: Any) -> None:
    frame = json.loads(GOOD_FRAME)
    for where in ("header", "route", "content"):
        frame[where] = part
        try:
            decode(json.dumps(frame))
        except MalformedMessage:
            pass


@FUZZ
@given(JSON | st.dictionaries(st.text(max_size=8), JSON, max_size=3).map(lambda t: {"twin": t}))
def test_twin_update_payload(req: Any) -> None:
    spec = twins.Spec("default", "d", props={"temp": twins.PropSpec("int", "0", "100")})
    for s in (spec, None):
        try:
            twins.apply_update({}, s, req, 1)
        except twins.Rejected as exc:
            assert exc.code in (400, 404) and exc.reason


@FUZZ
@given(SEL)
def test_label_selector(s: str) -> None:
    try:
        sel = parse_label_selector(s)
    except SelectorError:
        return
    sel.matches({"a": "b", "x": "1"})


@FUZZ
@given(JSON)
def test_label_selector_from_dict(d: Any) -> None:
    try:
        label_selector_from_dict(d if isinstance(d, dict) else {"matchLabels": d})
    except SelectorError:
        pass


@FUZZ
@given(SEL, st.sampled_from(sorted(FIELD_SPECS)))
def test_field_selector(s: str, resource: str) -> None:
    try:
        sel = parse_field_selector(s, resource)
    except SelectorError:
        return
    sel.matches(POD)


OPS = st.sampled_from(["add", "remove", "replace", "move", "copy", "test"])
PATHS = st.sampled_from(["/metadata/labels/a", "/spec/containers/0", "/x/-", "", "/metadata/labels/~1"])
PATCH_OP = st.fixed_dictionaries({"op": OPS, "path": PATHS | st.text(max_size=10), "value": JSON})


@FUZZ
@given(st.lists(JSON | PATCH_OP, max_size=4))
def test_json_patch(ops: list[Any]) -> None:
    try:
        apply_json_patch(json.loads(json.dumps(POD)), ops)
    except PatchError as exc:
        assert exc.code in (400, 422, 500)


@FUZZ
@given(JSON)
def test_merge_and_strategic_patch(patch: Any) -> None:
    for apply in (
        lambda: apply_merge_patch(json.loads(json.dumps(POD)), patch),
        lambda: apply_strategic_merge_patch(json.loads(json.dumps(POD)), patch, "Pod", "v1"),
        lambda: apply_strategic_merge_patch(json.loads(json.dumps(POD)), {"spec": patch}, "Pod", "v1"),
    ):
        try:
            apply()
        except PatchError:
            pass


@FUZZ
@given(
    st.text(max_size=60) | st.binary(max_size=60).map(lambda b: __import__("base64").b64encode(b).decode())
)
def test_continue_token(token: str) -> None:
    try:
        decode_continue(token)
    except StatusError as exc:
        assert exc.code == 400


@pytest.mark.parametrize(
    "sel",
    [{"matchLabels": 1}, {"matchLabels": ["a"]}, {"matchExpressions": [1]}, {"matchExpressions": {"a": 1}},
     {"matchExpressions": [{"key": "a", "operator": "In", "values": 5}]}],
)  # fmt: skip
def test_label_selector_of_the_wrong_shape_is_a_selector_error(sel: dict[str, Any]) -> None:
    """Found by test_label_selector_from_dict: these raised AttributeError/TypeError."""
    with pytest.raises(SelectorError, match="matchLabels must be a map"):
        label_selector_from_dict(sel)


TARGET = Target(next(rt for rt in builtin_types() if rt.plural == "pods"), "default", None, "")


def _unknown(kind: str, raw: bytes) -> bytes:
    """A `k8s\\0` + runtime.Unknown body: typeMeta (apiVersion, kind) and `raw` as the object."""
    type_meta = protobuf.enc_str(1, "v1") + protobuf.enc_str(2, kind)
    return protobuf.MAGIC + protobuf.enc_bytes(1, type_meta) + protobuf.enc_bytes(2, raw)


@FUZZ
@given(
    st.binary(max_size=300).map(lambda b: protobuf.MAGIC + b)
    | st.tuples(
        st.sampled_from(["Pod", "ConfigMap", "Node", "Status", "Unknown"]), st.binary(max_size=200)
    ).map(lambda kr: _unknown(*kr))
)
def test_protobuf_request_body(body: bytes) -> None:
    """The API server's protobuf body decoder: a dict, or one of the errors answered 415."""
    try:
        assert isinstance(protobuf.decode(body), dict)
    except (protobuf.ProtobufError, UnicodeDecodeError, IndexError):
        pass


@FUZZ
@given(
    st.sampled_from(["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]),
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | JSON.map(lambda j: json.dumps(j).encode()),
)
def test_request_body_by_content_type(content_type: str, body: bytes) -> None:
    """JSON, YAML and protobuf request bodies: decoded, or a StatusError (400/415) — never a 500."""
    req = ApiRequest("POST", TARGET, {}, {"Content-Type": content_type}, body)
    try:
        req.decode_body()
    except StatusError as exc:
        assert exc.code in (400, 415), exc


@pytest.mark.parametrize(
    "body",
    [
        protobuf.MAGIC + b"\x08\x00",  # Unknown.typeMeta as a varint (found by the fuzzer: TypeError, a 500)
        _unknown("Pod", b"\x0a\x02\x08\x01"),  # Pod.metadata holding a varint where ObjectMeta.name is bytes
        protobuf.MAGIC + b"\x0a\x7f\x0a",  # typeMeta announcing 127 bytes, 1 left
        _unknown("ConfigMap", b"\x12\x02\x08\x01"),  # a data map entry whose key is a varint
    ],
)
def test_protobuf_body_of_the_wrong_shape_is_answered_415(body: bytes) -> None:
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(body)
    req = ApiRequest("POST", TARGET, {}, {"Content-Type": "application/vnd.kubernetes.protobuf"}, body)
    with pytest.raises(StatusError) as err:
        req.decode_body()
    assert err.value.code == 415
