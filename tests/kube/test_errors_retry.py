"""Error translation (pure mapping + real transport failures) and the retry policy."""

from __future__ import annotations

import asyncio
import socket
import time
from itertools import repeat

import httpx
import pytest

from runtime.errors import AuthError, Conflict, KedgeError, NotFound, Unreachable
from runtime.kube.errors import (
    AlreadyExists,
    ApiError,
    Forbidden,
    Gone,
    KubeConflict,
    KubeNotFound,
    Unauthorized,
    error_for_status,
    kube_errors,
    status_from_body,
)
from runtime.kube.retry import is_retryable, retrying, with_retries

SERVER = "https://127.0.0.1:6443"


def status(code: int, reason: str, message: str = "boom") -> dict[str, object]:
    return {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("code", "reason", "cls", "base"),
    [
        (401, "Unauthorized", Unauthorized, AuthError),
        (403, "Forbidden", Forbidden, AuthError),
        (404, "NotFound", KubeNotFound, NotFound),
        (409, "Conflict", KubeConflict, Conflict),
        (409, "AlreadyExists", AlreadyExists, Conflict),
        (410, "Expired", Gone, ApiError),
        (422, "Invalid", ApiError, KedgeError),
        (500, "InternalError", ApiError, KedgeError),
    ],
)
def test_status_mapping(code: int, reason: str, cls: type, base: type) -> None:
    exc = error_for_status(SERVER, code, status(code, reason, 'pods "x" boom'), retry_after=None)
    assert type(exc) is cls and isinstance(exc, base)
    assert SERVER in str(exc) and 'pods "x" boom' in str(exc)
    assert exc.code == code and exc.reason == reason  # type: ignore[attr-defined]


def test_non_status_bodies_still_give_a_message() -> None:
    assert status_from_body(502, b"<html>bad gateway</html>")["message"] == "<html>bad gateway</html>"
    assert status_from_body(503, b"")["message"] == "HTTP 503"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_transport_error_becomes_unreachable_naming_server() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(Unreachable) as err:
        with kube_errors(url):
            async with httpx.AsyncClient() as http:
                await http.get(url)
    assert url in str(err.value)
    assert err.value.hint == "check --kubeconfig / is the API server running?"
    assert isinstance(err.value.__cause__, httpx.ConnectError)


def test_policy() -> None:
    assert is_retryable(Unreachable("x"))
    assert is_retryable(error_for_status(SERVER, 429, status(429, "TooManyRequests")))
    assert is_retryable(error_for_status(SERVER, 503, status(503, "ServiceUnavailable")))
    for code, reason in ((404, "NotFound"), (409, "Conflict"), (410, "Expired"), (422, "Invalid"), (403, "")):
        assert not is_retryable(error_for_status(SERVER, code, status(code, reason)))


async def test_with_retries_bounded_and_fatal_is_immediate() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error_for_status(SERVER, 500, status(500, "InternalError"))
        return "ok"

    assert await with_retries(flaky, attempts=5, delays=repeat(0.0)) == "ok" and calls == 3

    calls = 0

    async def always_down() -> str:
        nonlocal calls
        calls += 1
        raise Unreachable("down")

    with pytest.raises(Unreachable):
        await with_retries(always_down, attempts=4, delays=repeat(0.0))
    assert calls == 4

    calls = 0

    async def missing() -> str:
        nonlocal calls
        calls += 1
        raise error_for_status(SERVER, 404, status(404, "NotFound"))

    with pytest.raises(NotFound):
        await with_retries(missing, attempts=4, delays=repeat(0.0))
    assert calls == 1


async def test_retry_after_is_the_minimum_wait() -> None:
    calls: list[float] = []

    @retrying(attempts=3)
    async def throttled() -> int:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise error_for_status(SERVER, 429, status(429, "TooManyRequests"), retry_after=0.3)
        return 7

    assert await throttled() == 7
    assert calls[1] - calls[0] >= 0.29


async def test_cancel_during_backoff() -> None:
    called = asyncio.Event()

    async def down() -> None:
        called.set()
        raise Unreachable("down")

    task = asyncio.create_task(with_retries(down, attempts=5, delays=repeat(10.0)))
    await asyncio.wait_for(called.wait(), 5)  # the first attempt failed: the task is in its backoff now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
