"""Bounded retries for Kubernetes calls: 429 (honouring Retry-After), 5xx and connection errors.

Why a policy function: callers differ on what is worth retrying (a watch also treats 410 as
"relist", init treats 409 as "someone else created it"), so the decision is an injectable
`(exc) -> delay | None` and the loop stays generic. Delays come from runtime.backoff
(exponential, capped, jittered) so many clients do not retry in step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from runtime.backoff import backoff
from runtime.errors import Unreachable
from runtime.kube.errors import ApiError, Gone

T = TypeVar("T")
Policy = Callable[[BaseException], "float | None"]  # None: fatal; else minimum delay before retrying

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0


def retryable(exc: BaseException) -> float | None:
    """Default policy: transport errors and 429/5xx are transient (0 = use the backoff delay);
    Retry-After, when the server sent one, is the minimum wait. Everything else is fatal."""
    if isinstance(exc, Unreachable):
        return 0.0
    if isinstance(exc, ApiError) and not isinstance(exc, Gone):
        if exc.code == 429 or exc.code >= 500:
            return min(exc.retry_after or 0.0, MAX_RETRY_AFTER)
    return None


def is_retryable(exc: BaseException) -> bool:
    return retryable(exc) is not None


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    policy: Policy = retryable,
    delays: Iterator[float] | None = None,
    what: str = "Kubernetes call",
) -> T:
    """Await `fn()` up to `attempts` times; the last error is raised unchanged (already typed)."""
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    schedule = delays if delays is not None else backoff(initial=0.2, cap=5.0)
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            floor = policy(exc)
            if floor is None or attempt == attempts:
                raise
            delay = max(floor, next(schedule))
            log.debug("%s failed (%s), retry %d/%d in %.2fs", what, exc, attempt, attempts - 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def retrying(
    *, attempts: int = 5, policy: Policy = retryable
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorator form of with_retries for an async function."""

    def wrap(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def inner(*args: object, **kwargs: object) -> T:
            return await with_retries(lambda: fn(*args, **kwargs), attempts=attempts, policy=policy)

        inner.__name__ = getattr(fn, "__name__", "retrying")
        inner.__doc__ = fn.__doc__
        return inner

    return wrap
