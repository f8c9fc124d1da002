"""Per-source token buckets: `rate_limit` events per second with one second of burst."""

import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # source id → (tokens, at)

    def allow(self, source_id: str, limit: int, events: int) -> bool:
        now = time.monotonic()
        tokens, at = self._buckets.get(source_id, (float(limit), now))
        tokens = min(float(limit), tokens + (now - at) * limit)
        if events > tokens:
            self._buckets[source_id] = (tokens, now)
            return False
        self._buckets[source_id] = (tokens - events, now)
        return True
