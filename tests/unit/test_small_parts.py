"""Named queries, the receivedAt clock, the rate limiter, settings, secret masking, email
addresses."""

import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from appliance.settings import Settings
from engine.control import accounts, stats
from engine.destinations import secrets
from engine.errors import AccountError
from engine.gateway.clock import Clock
from engine.gateway.ratelimit import RateLimiter
from engine.sql import Queries
from engine.store import counters


def test_named_queries(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text(
        "-- a comment\n-- name: one\nSELECT 1\n\n-- name: two\nSELECT %(x)s\n  AND true\n"
    )
    queries = Queries(path)
    assert queries["one"] == "SELECT 1"
    assert queries["two"] == "SELECT %(x)s\n  AND true"
    with pytest.raises(KeyError, match=r"no query named 'three' in q\.sql"):
        queries["three"]


def test_clock_is_iso_utc_milliseconds() -> None:
    stamp = Clock().now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)


def test_rate_limiter_allows_the_limit_then_refills() -> None:
    limiter = RateLimiter()
    allowed = [limiter.allow("s", 3, 1) for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    assert limiter.allow("other", 3, 1)  # buckets are per source
    time.sleep(0.4)
    assert limiter.allow("s", 3, 1)


def test_rate_limiter_lets_an_oversized_batch_through_into_debt() -> None:
    limiter = RateLimiter()
    assert limiter.allow("s", 10, 50)
    assert not limiter.allow("s", 10, 1)


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point SLUICE_CONFIG at a file holding the given text."""

    def write(text: str) -> None:
        config = tmp_path / "sluice.toml"
        config.write_text(text)
        monkeypatch.setenv("SLUICE_CONFIG", str(config))

    return write


def test_settings_from_toml_file_and_environment(
    toml: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    toml('gateway_port = 9090\ndatabase_url = "postgresql://db/sluice"\n')
    monkeypatch.setenv("SLUICE_GATEWAY_PORT", "9191")
    monkeypatch.delenv("SLUICE_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.gateway_port == 9191  # the environment wins over the file
    assert settings.database_url == "postgresql://db/sluice"
    assert settings.web_port == 8000


def test_settings_reject_unknown_keys_and_missing_files(
    toml: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml("gatway_port = 1\n")
    with pytest.raises(ValueError, match="gatway_port"):
        Settings()
    monkeypatch.setenv("SLUICE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        Settings()


def test_secrets_are_masked_wherever_they_appear() -> None:
    shown = secrets.mask(
        '{"url": "https://x/collect?api_secret=s3cr3t-value", "body": {"api_key": "k-123456"},'
        ' "headers": {"Authorization": "Basic bXAyOg==", "X-Other": "bearer abc.def"}}',
        ["s3cr3t-value", "k-123456", "", "ab"],
    )
    assert "s3cr3t-value" not in shown and "k-123456" not in shown
    assert "bXAyOg" not in shown and "abc.def" not in shown
    assert '"Basic ****"' in shown and "api_secret=****" in shown
    assert secrets.mask("a cab", ["ab"]) == "a cab"  # too short to be a secret worth the noise


def test_a_secret_is_masked_as_json_writes_it_too() -> None:
    from engine.destinations.secrets import mask

    secret = 'Token "quoted\\secret-xyz"'
    encoded = json.dumps({"to": secret})
    assert mask(encoded, [secret]) == '{"to": "****"}'
    assert mask(secret, [secret]) == "****"


def test_a_secret_is_masked_as_a_url_carries_it_too() -> None:
    from engine.destinations.secrets import mask

    token = "abc+def/ghi=jkl"  # (as the sender's error names the URL it travelled in)
    said = "no answer: https://tr.example.com/v3/p/events?access_token=abc%2Bdef%2Fghi%3Djkl&x=1"
    assert (
        mask(said, [token]) == "no answer: https://tr.example.com/v3/p/events?access_token=****&x=1"
    )
    assert mask("/hooks/abc%2Bdef%2Fghi%3Djkl", [token]) == "/hooks/****"


def test_latency_buckets_and_the_percentiles_read_from_them() -> None:
    assert counters.latency_bucket(timedelta(milliseconds=40)) == 0
    assert counters.latency_bucket(timedelta(milliseconds=100)) == 1  # bounds are exclusive
    assert counters.latency_bucket(timedelta(hours=2)) == len(counters.LATENCY_BUCKETS) - 1
    counts = [0] * len(counters.LATENCY_BUCKETS)
    counts[1], counts[3], counts[9] = 60, 35, 5  # under 250 ms, under 1 s, under 5 min
    took = stats._percentiles(counts)
    assert (took.p50, took.p95, took.deliveries) == (0.25, 1, 100)
    counts[9] = 6  # 95 of 101 is short of 95%: the 95th percentile moves to the next bucket
    assert stats._percentiles(counts).p95 == 300


def test_top_names_are_counted_within_bounds_whatever_names_arrive() -> None:
    source = UUID(int=1)
    events = [(source, {"type": "track", "event": f"unique {n}"}) for n in range(300)]
    events += [(source, {"type": "track", "event": "Order Completed"})] * 5
    events += [(source, {"type": "page", "name": "x" * 500})] * 2 + [(source, {"type": "identify"})]
    names = counters.names_of(events)
    assert len(names) <= counters.NAMES_PER_BATCH + 3  # the rest folded into '' per call type
    assert names[source, "track", "Order Completed"] == 5
    assert names[source, "page", "x" * counters.NAME_LENGTH] == 2  # cut to a bounded length
    assert names[source, "identify", ""] == 1
    assert sum(names.values()) == len(events)


@pytest.mark.parametrize(
    "typed",
    ["admin@localhost", "Ann.Lee@Example.COM", "o'brien+tag@corp.internal", "ü@bücher.de"],
)
def test_email_addresses_as_people_write_them_are_taken(typed: str) -> None:
    assert accounts.email_address(f" {typed} ") == typed.lower()


@pytest.mark.parametrize(
    "typed",
    ['"><svg/onload=alert(1)>@t.io', "<a>@x.io", "a b@x.io", "a..b@x.io", ".a@x.io",
     "a@-x.io", "a@x_y.io", "a@[127.0.0.1]", "a@", "@x.io", "a@b@c", "x" * 65 + "@x.io",
     "a@" + "b" * 64 + ".io"],
)  # fmt: skip
def test_anything_else_is_not_an_email_address(typed: str) -> None:
    with pytest.raises(AccountError, match="is not an email address"):
        accounts.email_address(typed)
