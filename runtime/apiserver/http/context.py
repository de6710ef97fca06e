"""What one API request is about, decoded once from the URL, query, headers and body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from runtime.apiserver.http.auth import ADMIN, User
from runtime.apiserver.http.status_errors import StatusError, bad_request, path_not_found
from runtime.apiserver.registry.resources import Registry, ResourceType

Obj = dict[str, Any]


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (lists) or cluster-scoped
    name: str | None
    sub: str  # "" or a subresource


@dataclass
class ApiRequest:
    method: str
    target: Target
    query: dict[str, str]
    headers: Any  # case-insensitive mapping
    body: bytes
    user: User = ADMIN
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def rt(self) -> ResourceType:
        return self.target.rt

    @property
    def ns(self) -> str:
        return self.target.namespace or ""

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun", "") == "All"

    def content_type(self) -> str:
        return str(self.headers.get("Content-Type", "application/json")).split(";")[0].strip().lower()

    def decode_body(self) -> Any:
        """JSON or YAML by Content-Type, as the apiserver's serializers accept."""
        if not self.body:
            raise bad_request("the body of the request was empty")
        ct = self.content_type()
        if "protobuf" in ct:
            from runtime.apiserver.http import protobuf

            try:
                return protobuf.decode(self.body)
            except (protobuf.ProtobufError, UnicodeDecodeError, IndexError) as exc:
                raise StatusError(415, "UnsupportedMediaType", f"{exc}") from exc
        if "cbor" in ct:
            from runtime.apiserver.http.status_errors import unsupported_media_type

            raise unsupported_media_type(
                ct, ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
            )
        try:
            if "yaml" in ct:
                return yaml.safe_load(self.body)
            return orjson.loads(self.body)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            why = _short(exc)
            if isinstance(exc, orjson.JSONDecodeError) and why.startswith("unexpected end of data"):
                why = "unexpected end of JSON input"  # encoding/json's words
            # transformDecodeError: the kind expected, the error, the body's first 30 bytes
            body = self.body.decode("utf-8", "replace")
            summary = body[:30] + " ..." if len(body) > 30 else body
            raise bad_request(
                f"the object provided is unrecognized (must be of type {self.rt.kind}): "
                f"couldn't get version/kind; json parse error: {why} ({summary})"
            ) from exc

    def manager(self, default_op: str = "") -> str:
        fm = self.query.get("fieldManager")
        if fm:
            return fm
        ua = self.user_agent.split("/", 1)[0] if self.user_agent else ""
        return ua or "unknown"


def _short(exc: Exception) -> str:
    s = str(exc)
    return s.splitlines()[0][:200]


def resolve(registry: Registry, group: str, version: str, rest: list[str]) -> Target:
    if not rest:
        raise path_not_found()
    ns: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and group == ""
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        ns, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 3 and group != "":
        ns, rest = rest[1], rest[2:]
    rt = registry.get(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise path_not_found()
    if ns is not None and not rt.namespaced:
        raise path_not_found()
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else ""
    if sub and sub not in rt.subresources:
        raise path_not_found()
    if name == "":
        raise path_not_found()
    return Target(rt, ns, name, sub)


def require_object(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise bad_request("the object provided is unrecognized (must be of type object)")
    return body


__all__ = ["ApiRequest", "StatusError", "Target", "require_object", "resolve"]
