"""The Events page against the real app and a real PostgreSQL (in process): the list and its
filters, the live rows a page polls for, one event's page, and attacker-controlled text shown
as text everywhere."""

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_events import WORKSPACE, stored, track
from tests.integration.test_web_security import app_with, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"
CLOSING = "</script><script>alert(2)</script>"


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "viewer", WORKSPACE)


def listed(page: str) -> list[str]:
    """The message ids of the events a page lists, in order."""
    return re.findall(r'<td class="meta"><code>([^<]*)</code></td>', page)


async def test_the_list_filters_and_pages_and_shows_hostile_text_as_text(
    app: Litestar, database_url: str
) -> None:
    hostile = {"type": "track", "event": HOSTILE, "userId": CLOSING, "messageId": "evil",
               "properties": {"note": HOSTILE, "raw": CLOSING}}  # fmt: skip
    [(tx, ingest_id)] = stored(database_url, "web", hostile)
    stored(database_url, "web", track(1), track(2, "Order Completed"))
    stored(database_url, "ios", track(3, user="u2"))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        everything = (await client.get("/events")).text
        orders = (await client.get("/events?name=Order+Completed")).text
        theirs = (await client.get("/events?user=u2")).text
        odd = await client.get("/events?before_tx=not-a-tx&type=nonsense")
        at = re.search(rf'/events/{tx}/{ingest_id}\?at=([^"]+)"', everything)
        assert at is not None
        alone = await client.get(f"/events/{tx}/{ingest_id}?at={at[1]}")
        fragment = await client.get(
            f"/events/{tx}/{ingest_id}?at={at[1]}", headers={"HX-Request": "true"}
        )
        missing = await client.get(f"/events/{tx}/{ingest_id + 99}?at={at[1]}")
    assert listed(everything) == ["m3", "m2", "m1", "evil"]
    assert listed(orders) == ["m2"] and listed(theirs) == ["m3"]
    assert odd.status_code == 200 and listed(odd.text) == ["m3", "m2", "m1", "evil"]
    for page in (everything, alone.text, fragment.text):
        assert HOSTILE not in page and CLOSING not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in alone.text
    # the event's page says what became of it at each destination connected to its source
    assert alone.status_code == 200 and fragment.status_code == 200
    assert "<html" not in fragment.text and '<div class="outcomes">' in fragment.text
    assert re.search(r'status-waiting">waiting</span> <strong>hook</strong>', fragment.text)
    assert missing.status_code == 404


async def test_a_live_page_gets_only_the_events_newer_than_its_newest(
    app: Litestar, database_url: str
) -> None:
    [first] = stored(database_url, "web", track(1))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/events?source=")).text
        poller = re.search(r'<div id="live"[^>]*data-tx="(\d+)" data-id="(\d+)"', page)
        assert poller is not None and (poller[1], int(poller[2])) == first
        # the page asks with the newest row it shows (app.js adds it to the poller's URL)
        url = f"/events/live?after_tx={first[0]}&after_id={first[1]}"
        nothing = (await client.get(url, headers={"HX-Request": "true"})).text
        stored(database_url, "web", track(2), track(3, "Order Completed"))
        fresh = (await client.get(url, headers={"HX-Request": "true"})).text
        filtered = (await client.get(url + "&name=Order+Completed")).text
    assert nothing.strip() == ""
    assert listed(fresh) == ["m3", "m2"] and fresh.lstrip().startswith('<tr class="event"')
    assert listed(filtered) == ["m3"]


async def test_a_burst_bigger_than_a_page_is_said_and_not_silently_cut(
    app: Litestar, database_url: str
) -> None:
    [first] = stored(database_url, "web", track(0))
    stored(database_url, "web", *(track(n) for n in range(1, 53)))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        url = f"/events/live?after_tx={first[0]}&after_id={first[1]}"
        fresh = (await client.get(url, headers={"HX-Request": "true"})).text
    assert listed(fresh)[:2] == ["m52", "m51"] and len(listed(fresh)) == 50
    assert "More events arrived meanwhile than are shown above" in fresh
