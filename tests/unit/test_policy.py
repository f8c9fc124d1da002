from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from engine.specs import DeliveryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_budget_is_three_hours_and_at_least_three_attempts() -> None:
    policy = DeliveryPolicy()
    assert not policy.exhausted(2, NOW - timedelta(hours=5), NOW)
    assert not policy.exhausted(10, NOW - timedelta(hours=2, minutes=59), NOW)
    assert policy.exhausted(3, NOW - timedelta(hours=3), NOW)


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    policy = DeliveryPolicy(min_backoff_seconds=1, max_backoff_seconds=60)
    for attempts, ceiling in ((1, 1), (2, 2), (4, 8), (10, 60), (30, 60)):
        delays = [policy.backoff(attempts, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > 0  # jittered


def test_retry_after_is_honoured_up_to_the_longest_backoff() -> None:
    policy = DeliveryPolicy(min_backoff_seconds=1, max_backoff_seconds=60)
    assert policy.backoff(1, 30) == 30
    assert policy.backoff(1, 3600) == 60


@pytest.mark.parametrize(
    "fields",
    [{"concurrency": 0}, {"rate_limit": 0}, {"min_attempts": 0}, {"min_backoff_seconds": 0},
     {"min_backoff_seconds": 10, "max_backoff_seconds": 5}, {"timeout_seconds": -1},
     {"retries": 3}],
)  # fmt: skip
def test_bad_policies_are_refused_with_a_reason(fields: dict[str, float]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, DeliveryPolicy)
