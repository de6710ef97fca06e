"""/openapi/v2 and /openapi/v3, with the caching headers kube-apiserver sends.

v3 (kubectl 1.32 reads it before create/apply): kubectl looks for a PATCH operation tagged with the
kind's x-kubernetes-group-version-kind that takes the `fieldValidation` query parameter; finding it,
it leaves validation to the server (`fieldValidation=Strict`). Component schemas are published for
CRD kinds only; for built-in kinds kubectl then takes the patch metadata from v2.

v2 (v2.py): the swagger document kubectl 1.20 validates every create/apply with, and 1.32
every `kind: List`; served as JSON or as the gnostic protobuf kubectl asks for.

Every document carries an ETag (quoted uppercase hex SHA-512 of the bytes; /openapi/v2's protobuf
shares the JSON's, as in kube-openapi) and Last-Modified and answers If-None-Match /
If-Modified-Since with 304, as kube-openapi's handlers do; kubectl's HTTP cache revalidates
/openapi/v2 that way. The v3 index links each group-version as `?hash=<etag>`:
a matching hash is served `Cache-Control: public, immutable`, a stale one redirected (301) to the
current URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

import orjson

from runtime.apiserver.openapi import v2
from runtime.apiserver.openapi.defs import crd_definition
from runtime.apiserver.openapi.gnostic import encode_document
from runtime.apiserver.openapi.ops import operations, patch_types
from runtime.apiserver.registry.resources import Registry, ResourceType

Obj = dict[str, Any]
JSON = "application/json"
PB_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# Media types /openapi/v2 answers, in kube-openapi's order (the first match of a wildcard wins).
_V2_TYPES = (
    ("application", "json", JSON),
    ("application", "com.github.proto-openapi.spec.v2@v1.0+protobuf", PB_V2),
    ("application", "com.github.proto-openapi.spec.v2.v1.0+protobuf", PB_V2),
)
_V3_TYPES = (("application", "json", JSON),)
_YEAR = 365 * 24 * 3600


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Doc:
    body: bytes
    etag: str
    modified: float

    @classmethod
    def of(cls, body: bytes, modified: float) -> _Doc:
        return cls(body, hashlib.sha512(body).hexdigest().upper(), modified)


def _v3_paths(rt: ResourceType) -> Obj:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    out: Obj = {}
    for op in operations(rt):
        body: Obj = {"operationId": op.operation_id, "x-kubernetes-action": op.action}
        body["x-kubernetes-group-version-kind"] = gvk
        if op.query:
            body["parameters"] = [
                {"name": n, "in": "query", "schema": {"type": "boolean" if n == "force" else "string"}}
                for n in op.query
            ]
        if op.method == "patch":
            body["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in patch_types(rt)}}
        out.setdefault(op.path, {})[op.method] = body
    return out


def _v3_schema(rt: ResourceType) -> Obj:
    schema = dict(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(schema.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"type": "object"}
    schema["properties"] = props
    gvk = crd_definition(rt.group, rt.version, rt.kind, None)["x-kubernetes-group-version-kind"]
    return {**schema, "x-kubernetes-group-version-kind": gvk}


def _accepts(header: str, offered: tuple[tuple[str, str, str], ...]) -> str | None:
    """The content type to answer with: Accept clauses by quality, each matched against `offered`
    in order (`*/*` -> the first), as goautoneg + kube-openapi do; None -> 406."""
    clauses: list[tuple[float, int, str, str]] = []
    for i, part in enumerate((header or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        typ, _, sub = media.partition("/")
        if typ:
            clauses.append((-q, i, typ, sub or "*"))
    for neg_q, _, typ, sub in sorted(clauses):
        if neg_q >= 0:
            continue
        for t, s, ctype in offered:
            if typ in (t, "*") and sub in (s, "*"):
                return ctype
    return None


def _not_modified(doc: _Doc, headers: Any) -> bool:
    inm = headers.get("If-None-Match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or f'"{doc.etag}"' in tags
    ims = headers.get("If-Modified-Since")
    if ims:
        try:
            return int(doc.modified) <= parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
    return False


def _serve(doc: _Doc, ctype: str, headers: Any, extra: dict[str, str] | None = None) -> Reply:
    out = {"Etag": f'"{doc.etag}"', "Vary": "Accept", "Last-Modified": formatdate(doc.modified, usegmt=True)}
    out["Cache-Control"] = "no-cache, private"
    out.update(extra or {})
    if _not_modified(doc, headers):
        return Reply(304, b"", out)
    return Reply(200, doc.body, {**out, "Content-Type": ctype})


def _build_v2(types: list[ResourceType], modified: float) -> dict[str, _Doc]:
    doc = v2.build(types)
    as_json = _Doc.of(orjson.dumps(doc), modified)
    # kube-openapi's one ETag (of the JSON) for both representations: a client that cached either
    # revalidates with it and gets 304
    return {JSON: as_json, PB_V2: _Doc(encode_document(doc), as_json.etag, modified)}


class OpenAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._gen = -1
        self._v3: dict[str, _Doc] = {}
        self._index = _Doc.of(b"{}", 0)
        self._v2: dict[str, _Doc] = {}
        self._v2_gen = -1

    def _rebuild(self) -> None:
        now = time.time()
        groups: dict[str, list[ResourceType]] = {}
        for rt in self.registry.all():
            gv = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
            groups.setdefault(gv, []).append(rt)
        self._v3 = {}
        index: Obj = {"paths": {}}
        for gv, types in sorted(groups.items()):
            paths: Obj = {}
            schemas: Obj = {}
            for rt in types:
                paths.update(_v3_paths(rt))
                if rt.crd:
                    schemas[f"{rt.group}.{rt.version}.{rt.kind}"] = _v3_schema(rt)
            doc = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            }
            self._v3[gv] = _Doc.of(orjson.dumps(doc), now)
            index["paths"][gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self._v3[gv].etag}"}
        self._index = _Doc.of(orjson.dumps(index), now)
        self._gen = self.registry.generation

    async def _v2_doc(self, ctype: str) -> _Doc:
        """Built on first request (only kubectl validation asks for it) on a thread: the first build
        imports the model modules (~0.3 s), later ones (after a CRD change) take ~40 ms."""
        gen = self._gen
        if self._v2_gen != gen:
            docs = await asyncio.to_thread(_build_v2, self.registry.all(), self._index.modified)
            if self._gen != gen:  # the registry changed meanwhile: serve it, but do not keep it
                return docs[ctype]
            self._v2, self._v2_gen = docs, gen
        return self._v2[ctype]

    async def serve(self, path: str, query: Any, headers: Any) -> Reply | None:
        """The reply for a GET under /openapi/, or None for an unknown path (404)."""
        if self._gen != self.registry.generation:
            self._rebuild()
        rest = path[len("/openapi/") :].strip("/")
        accept = headers.get("Accept", "")
        if rest == "v2":
            ctype = _accepts(accept, _V2_TYPES)
            return Reply(406) if ctype is None else _serve(await self._v2_doc(ctype), ctype, headers)
        if rest == "v3":
            return _serve(self._index, JSON, headers)
        doc = self._v3.get(rest[3:]) if rest.startswith("v3/") else None
        if doc is None:
            return None
        if _accepts(accept, _V3_TYPES) is None:
            return Reply(406)
        wanted = query.get("hash", "")
        if not wanted:
            return _serve(doc, JSON, headers)
        if wanted != doc.etag:
            return Reply(301, b"", {"Location": f"/openapi/v3/{rest[3:]}?hash={doc.etag}"})
        expires = formatdate(time.time() + _YEAR, usegmt=True)
        return _serve(doc, JSON, headers, {"Cache-Control": "public, immutable", "Expires": expires})
