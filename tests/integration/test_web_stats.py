"""The Stats page against the real app and a real PostgreSQL (in process): the worker's
per-minute counters as charts per window, with the numbers in tooltips and legends."""

import re
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine.db import connection
from engine.store import counters, rejections
from engine.store.counters import NO_DESTINATION
from engine.store.rejections import Rejection
from tests.integration.test_events import WORKSPACE
from tests.integration.test_web_activity import counted, ids
from tests.integration.test_web_security import app_with, sign_in


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "viewer", WORKSPACE)


def legend(section: str) -> dict[str, int]:
    """A chart's legend: each layer's name and total."""
    found = re.findall(r'<i class="swatch [^"]+"></i>([^<]+) <strong>([\d,]+)</strong>', section)
    return {name: int(total.replace(",", "")) for name, total in found}


async def test_charts_per_window_with_their_numbers(app: Litestar, database_url: str) -> None:
    at = ids(database_url)
    web, ios, hook = at["web"], at["ios"], at["hook"]
    await counted(database_url, counters.Counts({(web, NO_DESTINATION, "received"): 500,
                                              (web, hook, "delivered"): 480}),
                  minutes_ago=3 * 60)  # fmt: skip
    await counted(database_url, counters.Counts({
        (web, NO_DESTINATION, "received"): 7, (ios, NO_DESTINATION, "received"): 2,
        (web, NO_DESTINATION, "duplicate"): 1, (web, hook, "delivered"): 6,
        (web, hook, "aborted"): 1, (web, hook, "retried"): 4,
    }))  # fmt: skip
    async with connection(database_url) as conn:  # deliveries' latency, as the router writes it
        await counters.add_latency(
            conn, counters.Latency({(hook, 1): 60, (hook, 3): 35, (hook, 9): 5})
        )
        await counters.add_names(conn, counters.Names({(web, "track", "Order Completed"): 30,
                                                 (web, "page", "Pricing <b>"): 12,
                                                 (web, "identify", ""): 9}))  # fmt: skip
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        hour = (await client.get("/stats?window=hour")).text
        day = (await client.get("/stats")).text
        odd = await client.get("/stats?window=century")
    received_hour = hour[: hour.index('id="stats-')]
    assert legend(received_hour) == {"web": 7, "ios": 2}  # the 3-hour-old minute is outside
    assert received_hour.count('<g class="bar">') == 61  # a bar a minute, this one included
    assert re.search(r"<title>[^<]+ UTC: 2 ios, 7 web</title>", received_hour)
    assert "1 duplicate (a message id sent before) were skipped" in hour
    top = re.findall(r'call-(\w+)">\w+</span></td><td>([^<]*)</td><td class="num">(\d+)<', hour)
    assert top == [("track", "Order Completed", "30"), ("page", "Pricing &lt;b&gt;", "12")]
    hook_day = day[day.index(f'id="stats-{hook}"') :].split("</section>")[0]
    assert legend(hook_day) == {"delivered": 486, "failed": 1}
    assert day[: day.index('id="stats-')].count('<g class="bar">') == 145  # per 10 minutes
    assert "4 tries failed and retried" in hook_day
    assert re.search(
        r"half of the deliveries took <strong>under 250 ms</strong>, 95% "
        r"<strong>under 1 s</strong> <span class=\"meta\">\(100 deliveries\)",
        hook_day,
    )
    assert re.search(r"<title>[^<]+ UTC: 480 delivered, 0 failed</title>", hook_day)
    assert odd.status_code == 200 and 'aria-current="page">Last day<' in odd.text


def published(database_url: str, *rows: tuple[str, UUID, int, int, int, str, int, str]) -> None:
    """Backlogs as workers publish them: (host, destination, jobs, events, retrying, oldest
    received this long ago, unread, published this long ago)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for pid, (host, dest, jobs, events, retrying, oldest, unread, seen) in enumerate(rows):
            conn.execute(
                "INSERT INTO backlogs (host, pid, destination_id, jobs, events, retrying,"
                " oldest_at, unread, seen_at) VALUES (%s, %s, %s, %s, %s, %s,"
                " now() - %s::interval, %s, now() - %s::interval)",
                (host, pid, dest, jobs, events, retrying, oldest, unread, seen),
            )


async def test_the_backlog_now_adds_up_the_live_workers_shares(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    hook, orders = at["hook"], at["orders only"]
    published(
        database_url,
        ("wk-a", hook, 100, 100, 3, "10 minutes", 0, "1 second"),
        ("wk-b", hook, 50, 60, 0, "2 minutes", 0, "3 seconds"),
        ("wk-gone", hook, 999, 999, 999, "2 days", 999, "2 minutes"),  # a dead worker's
        ("wk-a", orders, 20_000, 20_000, 0, "1 minute", 5_000, "1 second"),
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE destinations SET enabled = false WHERE name = 'dropped'")
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/stats")).text
    card = page[page.index('id="backlog"') :].split("</section>")[0]
    rows = dict(re.findall(r'<tr id="backlog-([^"]+)">(.*?)</tr>', card, re.S))
    assert re.search(r'width="0.6".*>160 events</td>.*>3</a></td>.*10 min ago', rows[str(hook)],
                     re.S)  # fmt: skip
    assert 'href="/failed?destination=hook&amp;view=retrying"' in rows[str(hook)]
    assert re.search(r'width="100.0".*>about 25,000 events</td>', rows[str(orders)], re.S)
    assert "disabled: not delivering" in rows[str(at["dropped"])]


async def test_messages_rejected_at_the_gateway_are_counted_and_listed(
    app: Litestar, database_url: str
) -> None:
    at = ids(database_url)
    hostile = b'{"event": "</pre><script>alert(1)</script>", "properties": {"blob": "' + b"z" * 5000
    async with connection(database_url) as conn:  # as the gateway stores them
        await rejections.append(conn, [
            Rejection("2026-12-06T10:00:00.000Z", str(at["web"]),
                      "message 3 of the batch is 40000 bytes; the limit is 32768 bytes",
                      40_000, rejections.head_of(hostile)),
            Rejection("2026-12-06T11:00:00.000Z", str(at["ios"]),
                      "the message is 50000 bytes; the limit is 32768 bytes", 50_000, "{}"),
        ])  # fmt: skip
    await counted(database_url, counters.Counts({(at["web"], NO_DESTINATION, "rejected"): 2}))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        stats_page = (await client.get("/stats?window=hour")).text
        every = (await client.get("/rejected")).text
        web_only = (await client.get("/rejected?source=web")).text
        unknown = (await client.get("/rejected?source=nope")).text
    assert 'over the size limit were <a href="/rejected">rejected at the gateway</a>' in stats_page
    assert every.index("the message is 50000 bytes") < every.index("message 3 of the batch")
    assert "<script>alert(1)" not in every and "&lt;script&gt;alert(1)" in every
    assert "The first 2,048 bytes as sent" in every and "40,000 B" in every
    assert "message 3 of the batch" in web_only and "the message is 50000" not in web_only
    assert "the message is 50000" in unknown  # an unknown source name shows them all
