"""The sender against a local HTTP server: what it reads of an answer."""

import time

import pytest

from engine.destinations.base import Request
from engine.pipeline.delivery.sender import Sender
from tests.sink import Answer, Arrival, Sink


def _throttled(arrival: Arrival) -> Answer:
    return Answer(429, dict(arrival.query))  # the headers the test asks for


def _unix(value: str) -> str:
    return str(int(time.time()) + int(value[3:])) if value.startswith("in ") else value


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"X-Ratelimit-Retry-After": "3"}, 3.0),  # Braze
        ({"X-RateLimit-Reset": "in 60"}, 60.0),  # Intercom: a Unix time
        ({"X-RateLimit-Reset": "30"}, None),  # a count of seconds, in some vendors' words: unread
        ({"Retry-After": "2", "X-RateLimit-Reset": "in 60"}, 2.0),
    ],
)
async def test_when_to_come_back_is_read_from_the_vendors_headers(
    headers: dict[str, str], wait: float | None
) -> None:
    # (a Unix time made when the test runs: "in 60" is a minute from now)
    headers = {k: _unix(v) for k, v in headers.items()}
    sender = Sender()
    await sender.start()
    try:
        with Sink(_throttled) as sink:
            answer = await sender.send(Request("GET", f"{sink.url}/x", params=headers), 5)
    finally:
        await sender.close()
    assert answer.status == 429
    if wait is None:
        assert answer.retry_after is None
    else:
        assert answer.retry_after == pytest.approx(wait, abs=2)
