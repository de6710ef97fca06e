"""Token bucket, sans-I/O: the cloud's per-node limit on what an edge sends (``hub.rate_limit_qps``)
and the edge's own pace for device reports (``mqtt.report_qps``), so the two read the same way."""

from __future__ import annotations


class TokenBucket:
    """``take(now)`` reserves one token and returns how long to wait for it; ``available(now)`` is how
    many whole tokens can be taken without waiting."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, now: float) -> float:
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self, now: float) -> int:
        self._refill(now)
        return max(0, int(self._tokens + 1e-9))

    def until_one(self, now: float) -> float:
        """Seconds until one token can be taken without waiting."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)
