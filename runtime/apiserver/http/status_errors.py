"""Kubernetes `kind: Status` error bodies, one constructor per reason a real apiserver sends.

Clients (kubectl, lightkube, client-go) branch on `reason` and `code`, and print `message`, so the
three must match what Kubernetes sends word for word; `details.kind` is the resource (plural) name,
as the apiserver's `errors.NewNotFound(qualifiedResource, name)` does.
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.errors import KedgeError


class StatusError(KedgeError):
    """An HTTP error this server answers with a Status body (apimachinery's errors.StatusError);
    raised anywhere in a handler, rendered once by http/app.py."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.details = details

    def body(self) -> dict[str, Any]:
        """In metav1.Status's field order, as the real server's encoder writes it: kind, apiVersion,
        metadata, status, message, reason, details, code (clients compare error bodies byte by byte)."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # omitempty: an internal error of the apply machinery has none
            out["reason"] = self.reason
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.body())


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', _details(name, resource, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        _details(name, resource, group),
    )


def conflict(resource: str, name: str, group: str, why: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        _details(name, resource, group),
    )


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def stale(resource: str, name: str, group: str = "") -> StatusError:
    return conflict(resource, name, group, MODIFIED)


def invalid(kind: str, name: str, group: str, causes: list[tuple[str, str, str]]) -> StatusError:
    """422 as apierrors.NewInvalid renders a field.ErrorList; causes are (field, reason type e.g.
    FieldValueInvalid, message 'field: Invalid value: ...'). The message lists each distinct error once
    (brackets only for two or more), details keep every cause in order (rules/fielderrors.py builds them)."""
    qual = f"{kind}.{group}" if group else kind
    msgs: list[str] = []
    for c in causes:
        if c[2] not in msgs:
            msgs.append(c[2])
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    details: dict[str, Any] = {"name": name} if name else {}  # Go: omitempty
    if group:
        details["group"] = group
    if kind:  # omitempty, as the rest
        details["kind"] = kind
    details["causes"] = [
        {"reason": r, "message": m[len(f) + 2 :] if f and m.startswith(f + ": ") else m, "field": f}
        for f, r, m in causes
    ]
    return StatusError(422, "Invalid", f'{qual} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(content_type: str, accepted: list[str]) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def unsupported_patch_type() -> StatusError:
    """A PATCH whose Content-Type is no patch type at all: the REST layer's bare 415 (a known patch
    type the kind does not take is `unsupported_media_type`'s longer text)."""
    return StatusError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})


def not_acceptable(accepted: list[str]) -> StatusError:
    return StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {', '.join(accepted)}",
    )


def too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str, resource: str = "", name: str = "", group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(name, resource, group) if resource else None)


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def internal(message: str) -> StatusError:
    return StatusError(
        500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
    )


def success(name: str, resource: str, group: str = "", uid: str = "") -> dict[str, Any]:
    details = _details(name, resource, group)
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
