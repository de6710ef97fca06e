"""Process logging for the long-running roles (apiserver, cloud, edge): one format, and the libraries'
own loggers (httpx logs one INFO line per request — 93 % of a cloud.log) at WARNING unless -v."""

from __future__ import annotations

import logging
import sys
import time

LIBRARIES = ("httpx", "httpcore", "websockets", "aiohttp", "asyncio", "docker", "urllib3", "paho")
# libraries that log a traceback per bad request from a peer (aiohttp: a malformed or oversized HTTP
# request, answered 400) — an unauthenticated client could fill the log: said once, then counted
PEER_ERROR_LOGGERS = ("aiohttp.server",)


def setup(level: int | str = logging.INFO, verbose: int = 0) -> None:
    """Configure the root logger; `verbose` ≥ 1: kedge at DEBUG and the libraries at INFO, ≥ 2: all DEBUG."""
    if isinstance(level, str):
        level = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(
        level=logging.DEBUG if verbose else level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    for name in PEER_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerKind) for f in logger.filters):
            logger.addFilter(OncePerKind())


def normalize(argv: list[str]) -> list[str]:
    """`-v 2`, `-v=2`, `--verbose 2`, `--verbose=2` (kubectl's habit) → `-v -v`; `-v` and `-vv` stay.
    Stops at `--` and at `kubectl`: what follows is not kedge's (`kedge kubectl get pods -v 6`)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--", "kubectl"):
            return out + argv[i:]
        name, eq, value = arg.partition("=")
        if name in ("-v", "--verbose") and eq and value.isdigit():
            out += ["-v"] * int(value)
        elif arg in ("-v", "--verbose") and i + 1 < len(argv) and argv[i + 1].isdigit():
            out += ["-v"] * int(argv[i + 1])
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


class LogOnce:
    """Say a repeating problem once per ``every`` seconds per key, then count it (design.md §3): a
    failing handler logs its traceback once, not once per message. Keys must be few (a kind of
    failure, not an object's name)."""

    def __init__(self, every: float = 60.0, logger: logging.Logger | None = None) -> None:
        self.every = every
        self.log = logger or logging.getLogger("kedge")
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def due(self, key: str, now: float | None = None) -> str | None:
        """The suffix to log with when `key` may be said now, else None (and it is counted)."""
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return None
        n = self.suppressed.pop(key, 0)
        self._last[key] = now
        return f" ({n} similar suppressed)" if n else ""

    def warning(self, key: str, text: str, now: float | None = None) -> None:
        suffix = self.due(key, now)
        if suffix is not None:
            self.log.warning("%s%s", text, suffix)

    def exception(self, key: str, text: str, now: float | None = None) -> None:
        """Inside an `except`: the traceback once per period, the rest counted."""
        suffix = self.due(key, now)
        if suffix is not None:
            self.log.exception("%s%s (said once a minute, then counted)", text, suffix)


class OncePerKind(logging.Filter):
    """A logging filter for a library's per-request errors: each kind (the exception's type) passes
    once per ``every`` seconds, the rest are counted and the next one that passes says how many."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self.once = LogOnce(every)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        key = type(exc).__name__ if exc is not None else f"{record.levelname}:{record.msg}"
        suffix = self.once.due(key)
        if suffix is None:
            return False
        if suffix:
            record.msg = f"{record.msg}{suffix}"
        return True
