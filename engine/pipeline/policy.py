"""Per-destination delivery policy: concurrency, rate limit, retry budget and backoff, and for
batch destinations when a file is uploaded."""

import random
from datetime import datetime, timedelta

import msgspec


class DeliveryPolicy(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    concurrency: int = 32
    rate_limit: float | None = None  # events per second; None is unlimited
    retry_hours: float = 3.0
    min_attempts: int = 3
    timeout_seconds: float = 30.0
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    # Batch destinations (files): a file is uploaded when it holds this many events or bytes
    # (uncompressed), or when its first event has waited this long.
    file_events: int = 10_000
    file_bytes: int = 32 * 1024 * 1024
    file_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 1000:
            raise ValueError("concurrency must be between 1 and 1000")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be a positive number of events per second")
        if self.retry_hours < 0 or self.min_attempts < 1:
            raise ValueError("retry_hours must be ≥ 0 and min_attempts ≥ 1")
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if not 0 < self.min_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoff bounds must satisfy 0 < min_backoff ≤ max_backoff")
        if self.file_events < 1 or self.file_bytes < 1 or self.file_seconds <= 0:
            raise ValueError("file_events, file_bytes and file_seconds must be positive")

    def exhausted(self, attempts: int, first_attempt: datetime, now: datetime) -> bool:
        """Whether a job that has just failed `attempts` times must be aborted."""
        spent = now - first_attempt >= timedelta(hours=self.retry_hours)
        return attempts >= self.min_attempts and spent

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: exponential with jitter, at least what the
        vendor asked for in Retry-After (capped at the longest backoff)."""
        ceiling = min(self.max_backoff_seconds, self.min_backoff_seconds * 2.0 ** (attempts - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_seconds))
        return delay
