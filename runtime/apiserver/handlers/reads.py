"""GET and LIST: stored bytes answered as they are; selectors, pagination and Table/metadata views."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from runtime.apiserver.api import Api
from runtime.apiserver.handlers import semantics
from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import bad_request, not_found
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.registry.storage import Entry
from runtime.apiserver.validation.schema import defaulting
from runtime.apiserver.validation.schema.nodes import node_for

Obj = dict[str, Any]
Result = tuple[int, bytes, str]
JSON = "application/json"
_PROJECTED = {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"}


def view_of(accept: str) -> tuple[str, str]:
    """('Table'|'PartialObjectMetadata'|'PartialObjectMetadataList'|'', meta.k8s.io version) from Accept."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("g") == "meta.k8s.io" and params.get("as"):
            return params["as"], params.get("v", "v1")
    return "", ""


def matcher(ctx: ApiRequest) -> Any:
    """A predicate over entries for labelSelector/fieldSelector, or None when both are empty."""
    try:
        label = semantics.parse_label_selector(ctx.query.get("labelSelector", ""))
        field = semantics.parse_field_selector(ctx.query.get("fieldSelector", ""), ctx.rt.plural)
    except semantics.SelectorError as exc:
        raise bad_request(str(exc)) from exc
    if label.empty() and field.empty():
        return None
    projected = ctx.rt.kind == "Pod" and {t.field for t in field.terms} <= _PROJECTED

    def match(e: Entry) -> bool:
        if not label.matches(e.labels):
            return False
        if field.empty():
            return True
        return bool(field.matches(e.fields if projected else e.obj()))

    return match


def needs_conversion(rt: ResourceType) -> bool:
    return rt.crd and bool(rt.storage_version) and rt.version != rt.storage_version


def reshapes(rt: ResourceType) -> bool:
    """Whether stored custom resources are changed on their way out: another version, or defaults."""
    return needs_conversion(rt) or (rt.crd and rt.schema is not None and node_for(rt.schema).fills)


def as_read(rt: ResourceType, obj: Obj) -> Obj:
    """A stored custom resource as the real server's storage decoder gives it: the schema's defaults
    filled in (an object stored before a default was added shows it on GET, LIST and WATCH — it is not
    rewritten), in the version asked for (conversion None)."""
    if rt.schema is not None and node_for(rt.schema).fills:
        defaulting.default(obj, rt.schema)
    if needs_conversion(rt):
        obj["apiVersion"] = rt.api_version
    return obj


def as_version(rt: ResourceType, raw: bytes) -> bytes:
    """Stored bytes as answered: unchanged, unless the custom resource reshapes (as_read)."""
    if not reshapes(rt):
        return raw
    return orjson.dumps(as_read(rt, orjson.loads(raw)))


def get(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    entry = api.store.get(rt.key, ctx.ns, name)
    if entry is None:
        raise not_found(rt.plural, name, rt.group)
    as_, v = view_of(str(ctx.headers.get("Accept", "")))
    if as_ == "Table":
        table = semantics.to_table(rt.plural, [entry.obj()], rt.printer_columns)
        table["apiVersion"] = f"meta.k8s.io/{v}"
        return 200, orjson.dumps(table), f"{JSON};as=Table;v={v};g=meta.k8s.io"
    if as_ == "PartialObjectMetadata":
        return (
            200,
            orjson.dumps(_partial(entry.obj(), v)),
            f"{JSON};as=PartialObjectMetadata;v={v};g=meta.k8s.io",
        )
    return 200, as_version(rt, entry.raw), JSON


def _partial(obj: Obj, v: str) -> Obj:
    meta = dict(obj.get("metadata", {}))
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{v}", "metadata": meta}


def encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "k": list(key)})).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        d = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return int(d["rv"]), (str(d["k"][0]), str(d["k"][1]))
    except Exception as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc


def select(api: Api, ctx: ApiRequest) -> tuple[list[Entry], int, str, int | None]:
    """Entries of one page, the list's resourceVersion, the continue token and remainingItemCount."""
    rt = ctx.rt
    match = matcher(ctx)
    try:
        limit = int(ctx.query.get("limit") or 0)
    except ValueError as exc:
        raise bad_request(f"limit: invalid value {ctx.query.get('limit')!r}") from exc
    rv = api.store.rv
    start: tuple[str, str] | None = None
    if ctx.query.get("continue"):
        rv, start = decode_continue(ctx.query["continue"])
    pairs = api.store.items(rt.key, ctx.target.namespace)
    if start is not None:
        pairs = [(k, e) for k, e in pairs if k > start]
    out: list[Entry] = []
    token, remaining = "", None
    last_key: tuple[str, str] = ("", "")
    for i, (k, e) in enumerate(pairs):
        if match is not None and not match(e):
            continue
        if limit and len(out) == limit:
            token = encode_continue(rv, last_key)
            if match is None:
                remaining = len(pairs) - i
            break
        out.append(e)
        last_key = k
    return out, rv, token, remaining


def list_(api: Api, ctx: ApiRequest) -> tuple[int, bytes | ListBody, str]:
    rt = ctx.rt
    entries, rv, token, remaining = select(api, ctx)
    meta: Obj = {"resourceVersion": str(rv)}
    if token:
        meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    as_, v = view_of(str(ctx.headers.get("Accept", "")))
    if as_ == "Table":
        table = semantics.to_table(rt.plural, [e.obj() for e in entries], rt.printer_columns)
        table["apiVersion"] = f"meta.k8s.io/{v}"
        table["metadata"] = meta
        return 200, orjson.dumps(table), f"{JSON};as=Table;v={v};g=meta.k8s.io"
    if as_ in ("PartialObjectMetadataList", "PartialObjectMetadata"):
        body = {
            "kind": "PartialObjectMetadataList",
            "apiVersion": f"meta.k8s.io/{v}",
            "metadata": meta,
            "items": [_partial(e.obj(), v) for e in entries],
        }
        return 200, orjson.dumps(body), f"{JSON};as=PartialObjectMetadataList;v={v};g=meta.k8s.io"
    raws = [as_version(rt, e.raw) for e in entries]
    if len(raws) > 512:
        return 200, ListBody(list_parts(rt, meta, raws)), JSON
    return 200, list_bytes(rt, meta, raws), JSON


class ListBody(list[bytes]):
    """A large list response as parts, written in slices so no second 30 MB copy is ever made."""


def list_parts(rt: ResourceType, meta: Obj, raws: list[bytes]) -> list[bytes]:
    """head, items joined in ~1 MiB slices, tail: one copy of the items, written slice by slice."""
    head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    parts = [head[:-1] + b',"items":[']
    group: list[bytes] = []
    size = 0
    for raw in raws:
        group.append(raw)
        size += len(raw)
        if size >= 1 << 20:
            parts.append(b",".join(group) + (b"," if len(parts) else b""))
            group, size = [], 0
    if group:
        parts.append(b",".join(group))
    elif len(parts) > 1:
        parts[-1] = parts[-1][:-1]
    parts.append(b"]}")
    return parts


def list_bytes(rt: ResourceType, meta: Obj, raws: list[bytes]) -> bytes:
    head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + b",".join(raws) + b"]}"
