"""Look-ups asked of a vendor (a local HTTP server) through the router's sender."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine.destinations import secrets
from engine.destinations.base import Looked, LookupFailed, Request
from engine.pipeline.delivery import lookups
from engine.pipeline.delivery.lookups import Asking
from engine.pipeline.delivery.sender import Sender
from tests.sink import Answer, Arrival, Sink

KEY = "lookup-key-8c1e"


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    sender = Sender()
    await sender.start()
    yield sender
    await sender.close()


def _numbered(arrival: Arrival) -> Answer:
    if arrival.path == "/busy":
        return Answer(429, body=f"slow down, {arrival.query['key']}")
    return Answer.json(200, {"n": arrival.query["n"]})


async def test_kept_answers_are_reused_within_their_time_and_bounds(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "MAX_KEPT", 2)
    with Sink(_numbered) as sink:
        asking = Asking(sender, 5, lambda text: text)

        def ask(n: int, keep: float = 60) -> "asyncio.Future[Looked]":
            return asyncio.ensure_future(asking.ask(Request("GET", f"{sink.url}/x?n={n}"), keep))

        assert (await ask(1)).body == {"n": "1"}
        await asyncio.gather(ask(1), ask(2), ask(2))  # 1 kept; 2 asked once for both
        await ask(3)  # three kept answers are one too many: the oldest used (1) goes
        await asyncio.gather(ask(2), ask(3), ask(1))
        await ask(4, keep=0)
        await ask(4, keep=0)  # not kept: asked each time
        asked = [a.query["n"] for a in sink.arrivals]
    assert asked == ["1", "2", "3", "1", "4", "4"]


async def test_throttled_or_unanswered_lookups_fail_with_the_secret_masked(sender: Sender) -> None:
    with Sink(_numbered) as sink:
        asking = Asking(sender, 5, lambda text: secrets.mask(text, [KEY]))
        with pytest.raises(LookupFailed) as throttled:
            await asking.ask(Request("GET", f"{sink.url}/busy", params={"key": KEY}), 60)
    assert str(throttled.value) == f"look-up GET {sink.url}/busy: HTTP 429: slow down, ****"
    with pytest.raises(LookupFailed, match=r"^look-up GET http://127\.0\.0\.1:\d+/x: "):
        await asking.ask(Request("GET", f"{sink.url}/x", params={"key": KEY}))  # (it stopped)


async def test_a_preview_makes_no_lookup_that_writes(sender: Sender) -> None:
    with Sink(_numbered) as sink:
        previewing = Asking(sender, 5, lambda text: text, writes=False)
        assert (await previewing.ask(Request("POST", f"{sink.url}/x?n=1"))).body == {"n": "1"}
        with pytest.raises(LookupFailed, match=r"changes nothing .* \(POST .*/x\): give its"):
            await previewing.ask(Request("POST", f"{sink.url}/x?n=2"), writes=True)
        assert len(sink.arrivals) == 1


def _unreadable(arrival: Arrival) -> Answer:
    if arrival.path == "/page":
        return Answer(200, {"Content-Type": "text/html"}, body="<html>maintenance</html>")
    return Answer.json(200, {"properties": ["p"] * 200})  # some 1,400 bytes


async def test_an_answer_cut_short_or_not_json_fails_the_lookup_and_is_not_kept(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "MAX_ANSWER", 1000)
    with Sink(_unreadable) as sink:
        asking = Asking(sender, 5, lambda text: text)
        with pytest.raises(LookupFailed, match=r"/long: its answer is over 1000 bytes"):
            await asking.ask(Request("GET", f"{sink.url}/long"), keep=60)
        with pytest.raises(LookupFailed, match=r"/page: its answer is not JSON"):
            await asking.ask(Request("GET", f"{sink.url}/page"), keep=60)
        with pytest.raises(LookupFailed):
            await asking.ask(Request("GET", f"{sink.url}/long"), keep=60)
        assert len(sink.arrivals) == 3  # nothing kept: asked again
