"""Reconnect delays: exponential growth, capped, with jitter so many edges do not reconnect in step."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(
    initial: float = 0.5,
    factor: float = 2.0,
    cap: float = 30.0,
    jitter: float = 0.5,
    *,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays forever: ``min(cap, initial*factor**n)`` scaled by a random factor in [1-jitter, 1].

    Jitter only shortens a delay, so no delay ever exceeds ``cap``. Restart the generator after a
    good connection.
    """
    if initial <= 0 or factor < 1 or cap <= 0 or not 0 <= jitter <= 1:
        raise ValueError("backoff needs initial>0, factor>=1, cap>0, 0<=jitter<=1")
    r = rng or random.Random()
    base = min(initial, cap)
    while True:
        yield base * (1 - jitter * r.random())
        base = min(cap, base * factor)
