"""What happened lately, on the control plane's pages: counts from the pipeline's per-minute
stats on the connections, source and destination pages, and the cards those pages refresh."""

import re
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine.control import workspace
from engine.db import connection
from engine.store import counters
from engine.store.counters import NO_DESTINATION
from tests.integration.test_web_security import app_with, sign_in
from ui.cards import STOP_POLLING
from ui.security import POLL_HEADER

WORKSPACE = """
sources: [{name: web}, {name: ios}]
destinations: [{name: hook, type: webhook, config: {webhookUrl: "https://h.example.com/in"}}]
connections: [{source: web, destination: hook}, {source: ios, destination: hook}]
"""


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "viewer", WORKSPACE)


def ids(database_url: str) -> dict[str, UUID]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT name, id FROM sources UNION ALL SELECT name, id FROM destinations"
        )
        return dict(rows.fetchall())


async def counted(database_url: str, counts: counters.Counts, minutes_ago: int = 0) -> None:
    """Counts as the worker writes them, `minutes_ago` in the past."""
    async with connection(database_url) as conn:
        await counters.add(conn, counts)
        if minutes_ago:
            await conn.execute(
                "UPDATE stats_minute SET minute = minute - %s"
                " WHERE minute > now() - '1 minute'::interval",
                (timedelta(minutes=minutes_ago),),
            )


def cells(page: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S)
    assert row is not None, row_id
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]


async def test_pages_count_what_happened_in_the_last_day_and_not_before(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    web, ios, hook = at["web"], at["ios"], at["hook"]
    # two days ago: outside the window
    await counted(
        database_url, counters.Counts({(web, hook, "delivered"): 500}), minutes_ago=2 * 24 * 60
    )
    await counted(database_url, counters.Counts({
        (web, NO_DESTINATION, "received"): 1250, (web, NO_DESTINATION, "duplicate"): 3,
        (web, hook, "delivered"): 1200, (web, hook, "aborted"): 7, (web, hook, "retried"): 11,
        (web, hook, "filtered"): 20, (web, hook, "dropped"): 23,
        (ios, NO_DESTINATION, "received"): 4, (ios, hook, "delivered"): 4,
    }), minutes_ago=90)  # fmt: skip
    await counted(
        database_url,
        counters.Counts({(web, NO_DESTINATION, "received"): 1, (web, hook, "delivered"): 1}),
    )
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        destination = (await client.get(f"/destinations/{hook}")).text
        source = (await client.get(f"/sources/{web}")).text
        overview = (await client.get("/connections")).text
    # From, delivered, retried, failed, filtered, dropped, last delivered
    assert cells(destination, f"activity-{web}") == [
        "web",
        "1,201",
        "11",
        "7",
        "20",
        "23",
        "just now",
    ]
    assert cells(destination, f"activity-{ios}") == ["ios", "4", "0", "0", "0", "0", "1 h ago"]
    assert re.search(r'class="figure received">1,251<', source)
    assert re.search(r'class="figure">3</span> duplicates', source)
    assert "1,201 delivered · " in source and "7 failed" in source
    assert "1,251 events</span> in 24 h" in overview and "4 events</span> in 24 h" in overview
    assert '1,205 delivered</span> · <span class="bad">7 failed</span> in 24 h' in overview


async def test_a_page_with_nothing_yet_says_so(app: Litestar, database_url: str) -> None:
    at = ids(database_url)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        destination = (await client.get(f"/destinations/{at['hook']}")).text
        source = (await client.get(f"/sources/{at['ios']}")).text
    assert cells(destination, f"activity-{at['web']}")[1:] == ["0", "0", "0", "0", "0", "not yet"]
    assert "no event yet" in source


async def test_the_activity_cards_come_alone_for_the_page_to_refresh(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    await counted(database_url, counters.Counts({(at["web"], at["hook"], "delivered"): 42}))
    poll = {"HX-Request": "true", POLL_HEADER: "1"}
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        for page in (f"/destinations/{at['hook']}", f"/sources/{at['web']}"):
            card = await client.get(f"{page}/activity", headers=poll)
            assert card.status_code == 200
            text = card.text.strip()
            assert text.startswith('<section class="card" id="activity"')
            assert text.endswith("</section>")
            assert "<html" not in text and "Settings" not in text and "Write key" not in text
            # opened as a page of its own (a bookmark), it is the whole page
            alone = await client.get(f"{page}/activity", follow_redirects=False)
            assert alone.status_code == 303 and alone.headers["location"] == page
        destination = await client.get(f"/destinations/{at['hook']}/activity", headers=poll)
        assert cells(destination.text, f"activity-{at['web']}")[1] == "42"

        # signed out while the tab stayed open: htmx is sent to sign in, then back to the page
        client.cookies.clear()
        page = f"http://testserver.local/sources/{at['web']}"
        signed_out = await client.get(
            f"/sources/{at['web']}/activity", headers={**poll, "HX-Current-URL": page}
        )
        assert signed_out.headers["HX-Redirect"] == f"/login?next=%2Fsources%2F{at['web']}"
        assert "figure" not in signed_out.text


async def test_a_card_whose_subject_is_deleted_stops_refreshing(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    async with connection(database_url) as conn:
        await workspace.delete(conn, "source", "ios")
        await workspace.delete(conn, "destination", "hook")
    poll = {"HX-Request": "true", POLL_HEADER: "1"}
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        for path in (f"/sources/{at['ios']}/activity", f"/destinations/{at['hook']}/activity"):
            gone = await client.get(path, headers=poll)
            assert gone.status_code == STOP_POLLING and gone.text == ""


async def test_a_page_refreshing_itself_does_not_keep_the_session_alive(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    card = f"/sources/{at['web']}/activity"
    poll = {"HX-Request": "true", POLL_HEADER: "1"}

    def seen(conn: psycopg.Connection) -> object:
        return conn.execute("SELECT last_seen_at, expires_at FROM web_sessions").fetchone()

    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE web_sessions SET last_seen_at = now() - '5 minutes'::interval,"
                " expires_at = now() + '30 seconds'::interval"
            )
            before = seen(conn)
            assert (await client.get(card, headers=poll)).status_code == 200
            assert seen(conn) == before  # neither noted as seen nor extended
            assert (await client.get(f"/sources/{at['web']}")).status_code == 200
            after = seen(conn)
            assert after is not None and before is not None and after != before
            # once a session has gone idle, the next refresh sends the page to sign in
            conn.execute("UPDATE web_sessions SET expires_at = now() - '1 second'::interval")
            expired = await client.get(card, headers=poll)
            assert expired.headers["HX-Redirect"].startswith("/login")
