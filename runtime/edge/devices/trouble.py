"""Say a problem once, then count it (design.md §3; KubeEdge's endless broker log is ke#5446).

``note(key, text)`` logs the first occurrence of ``key`` and counts the rest; ``clear(key, text)``
logs the recovery once with how many times it happened. ``snapshot()`` feeds `kedge status`.
"""

from __future__ import annotations

import logging
import time
from typing import Any


class Trouble:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.counts: dict[str, int] = {}
        self.last: dict[str, str] = {}
        self.at: dict[str, float] = {}
        self._active: set[str] = set()

    def note(self, key: str, text: str, level: int = logging.WARNING) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        self.last[key], self.at[key] = text, time.time()
        if key not in self._active:
            self._active.add(key)
            self.log.log(level, "%s (said once; further occurrences are counted in `kedge status`)", text)

    def clear(self, key: str, text: str) -> None:
        if key in self._active:
            self._active.discard(key)
            self.log.info("%s (after %d occurrence(s))", text, self.counts.get(key, 0))

    def active(self, key: str) -> bool:
        return key in self._active

    def snapshot(self) -> dict[str, Any]:
        return {
            k: {"count": n, "last": self.last.get(k, ""), "at": self.at.get(k), "active": k in self._active}
            for k, n in self.counts.items()
        }
