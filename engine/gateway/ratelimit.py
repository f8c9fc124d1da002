"""Per-source token buckets: `rate_limit` events per second with one second of burst.

A request is let through while the bucket holds a whole token and may take it into debt, so a
batch larger than the limit still gets through now and then instead of never; the debt keeps
the average at the limit.
"""

import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # source id → (tokens, at)

    def allow(self, source_id: str, limit: float, events: int) -> bool:
        now = time.monotonic()
        tokens, at = self._buckets.get(source_id, (limit, now))
        tokens = min(limit, tokens + (now - at) * limit)
        if tokens < min(1.0, limit):
            self._buckets[source_id] = (tokens, now)
            return False
        self._buckets[source_id] = (tokens - events, now)
        return True
