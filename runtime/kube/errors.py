"""The one exit for lightkube/httpx errors: everything leaves runtime/kube as a runtime.errors type.

Why: callers (cloud controllers, `kedge init`, the embedded control plane) must decide on retry,
exit code and message without knowing which HTTP library sits underneath. Each API error keeps the
Kubernetes Status fields (code, reason, details, Retry-After) so a caller can still tell an
`AlreadyExists` from a `Conflict` or a 403 from a terminating namespace.

    Unreachable                 transport failed (connect, TLS, read timeout) — names the server URL
    Unauthorized / Forbidden    401 / 403 (both AuthError)
    KubeNotFound                404 (a NotFound)
    KubeConflict / AlreadyExists  409 (a Conflict), reason kept
    Gone                        410 (watch resume from expired history)
    ApiError                    anything else (422 Invalid, 429, 5xx …) with the Status message
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
from lightkube.core.exceptions import ApiError as LightkubeApiError

from runtime.errors import AuthError, Conflict, KedgeError, NotFound, Unreachable

UNREACHABLE_HINT = "check --kubeconfig / is the API server running?"


class StatusInfo:
    """Kubernetes Status fields carried by every API error raised here."""

    code: int = 0
    reason: str = ""
    status: dict[str, Any]
    retry_after: float | None = None

    def _set_status(self, code: int, status: dict[str, Any], retry_after: float | None) -> None:
        self.code = code
        self.reason = str(status.get("reason") or "")
        self.status = status
        self.retry_after = retry_after


class ApiError(KedgeError, StatusInfo):
    """A Kubernetes API answer that is an error and has no more specific class (422, 429, 5xx …)."""


class Gone(ApiError):
    """410: the resourceVersion asked for is older than the server's history (relist needed)."""


class Unauthorized(AuthError, StatusInfo):
    """401: the credentials were refused."""


class Forbidden(AuthError, StatusInfo):
    """403: authenticated but not allowed (RBAC, or a namespace that is terminating)."""


class KubeNotFound(NotFound, StatusInfo):
    """404: object (or resource type) does not exist."""


class KubeConflict(Conflict, StatusInfo):
    """409 Conflict: the object changed underneath us (stale resourceVersion, apply field conflict)."""


class AlreadyExists(KubeConflict):
    """409 AlreadyExists: create of a name that is taken."""


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def status_from_body(code: int, body: bytes | str | None) -> dict[str, Any]:
    """Best-effort Status dict from a response body (a proxy may answer with HTML or nothing)."""
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and data.get("kind") == "Status":
            return data
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        return {"kind": "Status", "code": code, "message": text.strip()[:300]}
    return {"kind": "Status", "code": code, "message": f"HTTP {code}"}


def error_for_status(
    server: str, code: int, status: dict[str, Any], *, retry_after: float | None = None
) -> KedgeError:
    """Map one Kubernetes error answer to kedge's error tree (pure: no I/O, easy to test)."""
    message = str(status.get("message") or status.get("reason") or f"HTTP {code}")
    reason = str(status.get("reason") or "")
    text = f"Kubernetes API {server}: {message}"
    exc: KedgeError
    if code == 401:
        exc = Unauthorized(text, hint="the kubeconfig's credentials were refused; get a fresh kubeconfig")
    elif code == 403:
        exc = Forbidden(text, hint="the kubeconfig's user lacks permission (RBAC) for this request")
    elif code == 404:
        exc = KubeNotFound(text)
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else KubeConflict
        exc = cls(text, hint="re-read the object and retry" if cls is KubeConflict else None)
    elif code == 410:
        exc = Gone(text, hint="history expired; relist")
    else:
        exc = ApiError(text)
    assert isinstance(exc, StatusInfo)
    exc._set_status(code, status, retry_after)
    return exc


def error_for_response(server: str, response: httpx.Response, body: bytes | None = None) -> KedgeError:
    """Typed error for a non-2xx httpx response (body given when the response was streamed)."""
    content = body if body is not None else response.content
    return error_for_status(
        server,
        response.status_code,
        status_from_body(response.status_code, content),
        retry_after=_parse_retry_after(response.headers.get("Retry-After")),
    )


def unreachable(server: str, exc: BaseException) -> Unreachable:
    detail = str(exc) or type(exc).__name__
    return Unreachable(f"Kubernetes API {server} unreachable: {detail}", hint=UNREACHABLE_HINT)


@contextlib.contextmanager
def kube_errors(server: str) -> Iterator[None]:
    """Translate anything lightkube/httpx raises inside the block; always chained with `from`."""
    try:
        yield
    except httpx.TransportError as exc:
        raise unreachable(server, exc) from exc
    except LightkubeApiError as exc:
        status = exc.status.to_dict() if exc.status is not None else {}
        code = int(status.get("code") or (exc.response.status_code if exc.response is not None else 0))
        response = exc.response
        retry = _parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        raise error_for_status(server, code, status, retry_after=retry) from exc
    except httpx.HTTPStatusError as exc:
        raise error_for_response(server, exc.response) from exc
