"""How each controller is doing: failing objects, crashes, counts — what /readyz and `kedge status` show.

Why: one object a controller cannot handle (a condition without `reason`, a field of an unexpected
type) must cost a retry of that object, never the process. The worker records the failure here
(logged once with its traceback, then only counted), retries the object with backoff, and clears it
when a later reconcile succeeds or the object is gone. A controller is *failing* while one of its
objects keeps failing or its run crashed and is being restarted; retryable API errors (conflicts,
a timeout) are only counted.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
OnChange = Callable[[str, dict[str, Any], "dict[str, Any] | None"], None]


def describe(exc: BaseException) -> str:
    """`KeyError: 'reason'` — the exception's type and text, as a log line or a status field shows it."""
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class Failure:
    error: str
    count: int = 1
    since: float = field(default_factory=time.time)


@dataclass(slots=True)
class State:
    failing: dict[str, Failure] = field(default_factory=dict)  # key -> its current failure
    crashed: str = ""  # the run's last crash while it is being restarted
    failures: int = 0  # every failed reconcile or handler call since start
    retries: int = 0  # retryable API errors (conflicts, timeouts), not failures
    crashes: int = 0


class ControllerHealth:
    """Failures per controller; one instance per controller manager, passed to every controller."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    def register(self, name: str) -> None:
        self.states.setdefault(name, State())

    def failed(self, name: str, key: str, exc: BaseException) -> None:
        """Record a failed reconcile (or event handler) of `key`; logs the traceback the first time
        this key fails with this error, later repeats only count."""
        state = self.states.setdefault(name, State())
        state.failures += 1
        error = describe(exc)
        prev = state.failing.get(key)
        if prev is not None and prev.error == error:
            prev.count += 1
            log.debug("%s: %s still failing (%s), %d times", name, key, error, prev.count)
            return
        state.failing[key] = Failure(error, prev.count + 1 if prev else 1)
        tb = "".join(traceback.format_exception(exc)).rstrip()
        log.error("%s: reconcile of %s failed: %s; retrying with backoff\n%s", name, key, error, tb)

    def retried(self, name: str) -> None:
        self.states.setdefault(name, State()).retries += 1

    def succeeded(self, name: str, key: str) -> None:
        state = self.states.get(name)
        if state is not None and state.failing.pop(key, None) is not None:
            log.info("%s: %s reconciled again", name, key)

    def crashed(self, name: str, exc: BaseException) -> None:
        state = self.states.setdefault(name, State())
        state.crashes += 1
        state.crashed = describe(exc)
        log.error("controller %s stopped: %s; restarting", name, state.crashed, exc_info=exc)

    def running(self, name: str) -> None:
        self.states.setdefault(name, State()).crashed = ""

    def guard(self, name: str, fn: OnChange) -> OnChange:
        """`fn` as an informer handler whose exceptions are recorded against `name`, not raised."""

        def handler(typ: str, obj: dict[str, Any], prev: dict[str, Any] | None) -> None:
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            meta = meta if isinstance(meta, dict) else {}
            key = "event " + f"{meta.get('namespace') or ''}/{meta.get('name') or ''}".lstrip("/")
            try:
                fn(typ, obj, prev)
            except Exception as exc:
                self.failed(name, key, exc)
            else:
                self.succeeded(name, key)

        return handler

    def problem(self, name: str) -> str | None:
        """None while `name` is healthy, else one line saying what fails."""
        state = self.states.get(name)
        if state is None:
            return None
        if state.crashed:
            return f"restarting after: {state.crashed}"
        if not state.failing:
            return None
        key, failure = next(iter(state.failing.items()))
        more = f" (and {len(state.failing) - 1} more)" if len(state.failing) > 1 else ""
        return f"{len(state.failing)} object(s) failing: {key}: {failure.error}{more}"

    def report(self) -> dict[str, Any]:
        """Every controller's state, JSON-ready, for `kedge status`."""
        return {
            name: {
                "healthy": self.problem(name) is None,
                "problem": self.problem(name) or "",
                "failing": {
                    k: {"error": f.error, "count": f.count, "since": f.since} for k, f in s.failing.items()
                },
                "failures": s.failures,
                "retries": s.retries,
                "crashes": s.crashes,
            }
            for name, s in sorted(self.states.items())
        }
