"""The swagger 2.0 document as the gnostic `openapi.v2.Document` protobuf kubectl downloads.

kubectl (every version since 1.10) fetches /openapi/v2 only as
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and decodes it with gnostic's
OpenAPIv2.proto; kubectl 1.20 validates every create/apply against it, 1.32 every `kind: List`.
Field numbers follow that .proto. Vendor extensions (`x-kubernetes-*`) travel as `NamedAny` whose
`Any.yaml` holds the value; JSON is YAML, so the value is written as JSON. Only the parts of the
format the server's own document uses are encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from runtime.apiserver.http.protobuf import enc_bytes, enc_double, enc_str, enc_varint

Obj = dict[str, Any]
Enc = Callable[[Any], bytes]


def _any(value: Any) -> bytes:
    """gnostic `Any`: field 2 is the YAML text of the value."""
    return enc_str(2, orjson.dumps(value).decode())


def _named(num: int, mapping: Obj, enc: Enc) -> bytes:
    """A map as repeated `Named*` {1: name, 2: value} entries, in the document's order."""
    return b"".join(enc_bytes(num, enc_str(1, k) + enc_bytes(2, enc(v))) for k, v in mapping.items())


def _extensions(num: int, obj: Obj) -> bytes:
    return _named(num, {k: v for k, v in obj.items() if k.startswith("x-")}, _any)


def _strings(num: int, values: list[str]) -> bytes:
    return b"".join(enc_bytes(num, v.encode()) for v in values)


def _bool(num: int, value: Any) -> bytes:
    return enc_varint(num, 1 if value else 0)


def _schema(s: Obj) -> bytes:
    out = [enc_str(1, s.get("$ref", "")), enc_str(2, s.get("format", "")), enc_str(3, s.get("title", ""))]
    out.append(enc_str(4, s.get("description", "")))
    if "default" in s:
        out.append(enc_bytes(5, _any(s["default"])))
    for key, num in (("multipleOf", 6), ("maximum", 7), ("minimum", 9)):
        out.append(enc_double(num, float(s.get(key, 0))))
    out += [_bool(8, s.get("exclusiveMaximum")), _bool(10, s.get("exclusiveMinimum"))]
    for key, num in (("maxLength", 11), ("minLength", 12), ("maxItems", 14), ("minItems", 15)):
        out.append(enc_varint(num, int(s.get(key, 0))))
    out += [enc_str(13, s.get("pattern", "")), _bool(16, s.get("uniqueItems"))]
    out += [enc_varint(17, int(s.get("maxProperties", 0))), enc_varint(18, int(s.get("minProperties", 0)))]
    out.append(_strings(19, s.get("required", [])))
    out += [enc_bytes(20, _any(v)) for v in s.get("enum", [])]
    extra = s.get("additionalProperties")
    if isinstance(extra, bool):  # a oneof member: written even when false
        out.append(enc_bytes(21, b"\x10" + (b"\x01" if extra else b"\x00")))
    elif isinstance(extra, dict):
        out.append(enc_bytes(21, enc_bytes(1, _schema(extra))))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(enc_bytes(22, _strings(1, types)))
    if "items" in s:
        items = s["items"] if isinstance(s["items"], list) else [s["items"]]
        out.append(enc_bytes(23, b"".join(enc_bytes(1, _schema(i)) for i in items)))
    out += [enc_bytes(24, _schema(x)) for x in s.get("allOf", [])]
    if "properties" in s:
        out.append(enc_bytes(25, _named(1, s["properties"], _schema)))
    out += [enc_str(26, s.get("discriminator", "")), _bool(27, s.get("readOnly"))]
    if "example" in s:
        out.append(enc_bytes(30, _any(s["example"])))
    out.append(_extensions(31, s))
    return b"".join(out)


def _parameter(p: Obj) -> bytes:
    """`ParametersItem`: a body parameter, or a query/path parameter (`NonBodyParameter`)."""
    if "$ref" in p:
        return enc_bytes(2, enc_str(1, p["$ref"]))
    head = _bool(1, p.get("required")) + enc_str(2, p["in"]) + enc_str(3, p.get("description", ""))
    head += enc_str(4, p["name"])
    if p["in"] == "body":
        body = enc_str(1, p.get("description", "")) + enc_str(2, p["name"]) + enc_str(3, "body")
        body += _bool(4, p.get("required")) + enc_bytes(5, _schema(p.get("schema", {})))
        return enc_bytes(1, enc_bytes(1, body))
    if p["in"] == "query":  # QueryParameterSubSchema: allowEmptyValue=5, type=6, uniqueItems=20
        sub = head + enc_str(6, p.get("type", "")) + _bool(20, p.get("uniqueItems")) + _extensions(23, p)
        return enc_bytes(1, enc_bytes(2, enc_bytes(3, sub)))
    if p["in"] == "path":  # PathParameterSubSchema: type=5, uniqueItems=19
        sub = head + enc_str(5, p.get("type", "")) + _bool(19, p.get("uniqueItems")) + _extensions(22, p)
        return enc_bytes(1, enc_bytes(2, enc_bytes(4, sub)))
    raise ValueError(f"parameter location {p['in']!r} is not encoded")


def _response(r: Obj) -> bytes:
    """`ResponseValue` holding a `Response` {1: description, 2: SchemaItem{1: schema}}."""
    body = enc_str(1, r.get("description", ""))
    if "schema" in r:
        body += enc_bytes(2, enc_bytes(1, _schema(r["schema"])))
    return enc_bytes(1, body)


def _operation(op: Obj) -> bytes:
    out = [_strings(1, op.get("tags", [])), enc_str(3, op.get("description", ""))]
    out += [enc_str(5, op.get("operationId", "")), _strings(6, op.get("produces", []))]
    out += [_strings(7, op.get("consumes", []))]
    out += [enc_bytes(8, _parameter(p)) for p in op.get("parameters", [])]
    if "responses" in op:
        out.append(enc_bytes(9, _named(1, op["responses"], _response)))
    out += [_strings(10, op.get("schemes", [])), _extensions(13, op)]
    return b"".join(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: Obj) -> bytes:
    out = [enc_bytes(num, _operation(item[m])) for m, num in _METHODS.items() if m in item]
    out += [enc_bytes(9, _parameter(p)) for p in item.get("parameters", [])]
    return b"".join(out) + _extensions(10, item)


def _security_definition(d: Obj) -> bytes:
    """`SecurityDefinitionsItem` oneof: only the apiKey scheme (the bearer token header) is used."""
    body = enc_str(1, d["type"]) + enc_str(2, d["name"]) + enc_str(3, d["in"])
    return enc_bytes(2, body + enc_str(4, d.get("description", "")))


def encode_document(doc: Obj) -> bytes:
    """The swagger 2.0 dict `doc` as a serialized gnostic `openapi.v2.Document`."""
    info = doc.get("info", {})
    out = [enc_str(1, doc.get("swagger", "2.0"))]
    out.append(enc_bytes(2, enc_str(1, info.get("title", "")) + enc_str(2, info.get("version", ""))))
    out += [_strings(6, doc.get("consumes", [])), _strings(7, doc.get("produces", []))]
    out.append(enc_bytes(8, _named(2, doc.get("paths", {}), _path_item)))
    out.append(enc_bytes(9, _named(1, doc.get("definitions", {}), _schema)))
    for req in doc.get("security", []):
        out.append(enc_bytes(12, _named(1, req, lambda scopes: _strings(1, scopes))))
    if "securityDefinitions" in doc:
        out.append(enc_bytes(13, _named(1, doc["securityDefinitions"], _security_definition)))
    return b"".join(out)
