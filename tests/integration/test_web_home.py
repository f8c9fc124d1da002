"""The home page against the real app and a real PostgreSQL (in process): processes up and
down from their heartbeats, whether processing keeps up, the last hour's failures."""

import asyncio
import os
import re
import socket
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from engine import heartbeats
from engine.db import connection_pool
from engine.heartbeats import Heartbeat
from engine.store import counters
from tests.integration.test_events import WORKSPACE, stored, track
from tests.integration.test_web_activity import counted, ids
from tests.integration.test_web_security import app_with, sign_in
from tests.integration.test_web_stats import published


@pytest.fixture
async def app(database_url: str) -> Litestar:
    return await app_with(database_url, "viewer", WORKSPACE)


def beats(database_url: str, *rows: tuple[str, int, str, str]) -> None:
    """Heartbeats: (host, pid, role, seen this long ago)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for host, pid, role, ago in rows:
            conn.execute(
                "INSERT INTO heartbeats (host, pid, role, seen_at)"
                " VALUES (%s, %s, %s, now() - %s::interval)",
                (host, pid, role, ago),
            )


def certified(database_url: str, *rows: tuple[str, int, str, str, float | None]) -> None:
    """Heartbeats whose report says the certificate in service expires in so many days (None:
    no certificate): (host, pid, role, seen this long ago, days)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for host, pid, role, ago, days in rows:
            report = "{}" if days is None else f'{{"tls_expires": {expires_in(days)}}}'
            conn.execute(
                "INSERT INTO heartbeats (host, pid, role, seen_at, report)"
                " VALUES (%s, %s, %s, now() - %s::interval, %s)"
                " ON CONFLICT (host, pid, role) DO UPDATE SET report = EXCLUDED.report",
                (host, pid, role, ago, report),
            )


def expires_in(days: float) -> int:
    return int((datetime.now(UTC) + timedelta(days=days)).timestamp())


def day(days: float) -> str:
    return f"{datetime.now(UTC) + timedelta(days=days):%Y-%m-%d}"


async def test_processes_up_and_down_processing_behind_and_failures(
    app: Litestar, database_url: str
) -> None:
    beats(database_url, ("gw-1", 10, "gateway", "2 seconds"), ("gw-2", 11, "gateway", "1 second"),
          ("wk-1", 20, "worker/process", "5 minutes"))  # fmt: skip
    old = stored(database_url, "web", track(1))
    stored(database_url, "web", track(2))
    with psycopg.connect(database_url, autocommit=True) as conn:
        # the processor is at the first event, received 90 s before the second
        conn.execute("UPDATE ingest_events SET received_at = received_at - interval '90 seconds'"
                     " WHERE id = %s", (old[0][1],))  # fmt: skip
        conn.execute(
            "UPDATE processor_positions SET tx = %s::xid8, id = %s"
            " WHERE partition = (SELECT partition FROM ingested WHERE id = %s)",
            (old[0][0], old[0][1], old[0][1]),
        )
    at = ids(database_url)
    hook = (at["web"], at["hook"])
    await counted(database_url, counters.Counts({(*hook, "aborted"): 3, (*hook, "delivered"): 40}))
    published(database_url, ("wk-1", at["hook"], 7, 7, 0, "5 minutes", 0, "1 second"))
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/")).text
        refresh = await client.get("/", headers={"HX-Request": "true"})
    gateway = re.search(r'id="role-gateway">(.*?)</li>', page, re.S)
    worker = re.search(r'id="role-worker">(.*?)</li>', page, re.S)
    assert gateway is not None and worker is not None
    assert ">up<" in gateway[1] and "2 processes on gw-1, gw-2" in gateway[1]
    assert ">down<" in worker[1] and "not heard from" in worker[1]
    assert "worker/process (pid 20 on wk-1) last heard from 5 min ago" in page
    assert re.search(r'figure bad">(89|90|91) s behind<', page)
    assert "3 events failed in the last hour" in page
    assert 'href="/failed?destination=hook&amp;window=1h">3</a>' in page
    hour = re.search(rf'id="hour-{at["hook"]}">(.*?)</tr>', page, re.S)
    assert hour is not None and ">40<" in hour[1] and ">7 events</td>" in hour[1]
    assert re.search(r'figure">7</span> waiting for delivery.*oldest received 5 min ago', page)
    orders = re.search(rf'id="hour-{at["orders only"]}">(.*?)</tr>', page, re.S)
    assert orders is not None and "not known: no worker delivers now" in orders[1]
    assert refresh.text.lstrip().startswith('<div id="health"') and "<html" not in refresh.text


async def test_a_fresh_install_says_what_to_do(database_url: str) -> None:
    app = await app_with(database_url, "viewer", "sources: []")
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/")).text
    assert "No event stored yet." in page and "Nothing connected yet" in page


async def test_a_process_beats_while_it_runs_and_says_goodbye(database_url: str) -> None:
    pool = connection_pool(database_url, max_size=2)
    await pool.open()
    beat = Heartbeat(pool, "worker/deliver")
    try:
        beat.start()
        for _ in range(100):
            async with pool.connection() as conn:
                alive = await heartbeats.recent(conn)
            if alive:
                break
            await asyncio.sleep(0.05)
        [me] = alive
        assert (me.host, me.pid, me.role, me.alive) == (
            socket.gethostname(), os.getpid(), "worker/deliver", True
        )  # fmt: skip
        await beat.stop()
        async with pool.connection() as conn:
            assert await heartbeats.recent(conn) == []
    finally:
        await pool.close()


async def test_the_workers_and_their_partitions(app: Litestar, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for stage, holder, low, high in (("process", "h1:7", 0, 31), ("process", "h2:9", 32, 63),
                                         ("deliver", "h1:8", 0, 63)):  # fmt: skip
            conn.execute(
                "UPDATE leases SET holder = %s, expires_at = now() + interval '1 minute'"
                " WHERE stage = %s AND partition BETWEEN %s AND %s",
                (holder, stage, low, high),
            )
        # h2 stopped being heard from: its leases lapsed, and the page no longer lists it
        conn.execute("UPDATE leases SET expires_at = now() - interval '1 second'"
                     " WHERE holder = 'h2:9'")  # fmt: skip
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/")).text
    card = page[page.index('id="workers"') :].split("</section>")[0]
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>\s*<td>([^<]+)</td>\s*<td>(\d+) <span", card)
    assert rows == [("delivery", "h1:8", "64"), ("processing", "h1:7", "32")]
    assert "(0-31)" in card and "(0-63)" in card and "nothing yet" in card


async def test_events_waiting_in_a_hosts_spool_are_shown(app: Litestar, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for host, pid, ago, report in (
            ("<b>gw-1</b>", 10, "3 seconds", '{"spool_bytes": 12000000, "spool_files": 2,'
                                            ' "spool_damaged": 0}'),
            ("<b>gw-1</b>", 11, "20 seconds", '{"spool_bytes": 1, "spool_files": 1,'
                                             ' "spool_damaged": 0}'),  # (older: not this one)
            ("gw-2", 12, "1 second", '{"spool_bytes": 0, "spool_files": 0, "spool_damaged": 1}'),
            ("gw-3", 13, "1 second", '{"spool_bytes": 0, "spool_files": 0, "spool_damaged": 0}'),
        ):  # fmt: skip
            conn.execute(
                "INSERT INTO heartbeats (host, pid, role, seen_at, report)"
                " VALUES (%s, %s, 'gateway', now() - %s::interval, %s)",
                (host, pid, ago, report),
            )
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        page = (await client.get("/")).text
    notices = re.findall(
        r'<p class="alert (\w+)" role="status" id="spool-\d">(.*?)</p>', page, re.S
    )
    assert [kind for kind, _ in notices] == ["info", "error"]
    first, second = (" ".join(text.split()) for _, text in notices)
    assert first.startswith("12.0 MB of accepted events wait in the gateway spool on")
    assert "<strong>&lt;b&gt;gw-1&lt;/b&gt;</strong>" in first and "(as of just now)" in first
    assert "1 damaged spool file set aside on <strong>gw-2</strong>" in second
    assert "gw-3" not in "".join(text for _, text in notices)


async def test_each_host_s_certificate_and_how_soon_it_expires(
    app: Litestar, database_url: str
) -> None:
    certified(database_url, ("gw-1", 10, "gateway", "1 second", None),
              ("gw-1", 11, "web", "1 second", None))  # fmt: skip
    async with AsyncTestClient(app) as client:
        await sign_in(client, "viewer@example.com")
        plain = (await client.get("/")).text
        certified(
            database_url,
            ("gw-1", 10, "gateway", "1 second", 45), ("gw-1", 11, "web", "2 seconds", 30),
            ("gw-2", 12, "gateway", "1 second", 10),
            ("gw-3", 13, "web", "1 second", -1),
            ("gw-4", 14, "gateway", "5 minutes", -5),  # not running: serves nothing
            ("wk-1", 20, "worker/process", "1 second", 3),  # (a worker serves no HTTPS)
        )  # fmt: skip
        page = (await client.get("/")).text
        refresh = (await client.get("/", headers={"HX-Request": "true"})).text
    assert 'id="certificates"' not in plain and "HTTPS certificate" not in plain
    card = page[page.index('id="certificates"') :].split("</section>")[0]
    lines = re.findall(
        r'<li id="certificate-\d" class="certificate (\w+)"><span class="badge (\w+)">([^<]+)'
        r"</span>\s*<strong>([^<]+)</strong> <span class=\"meta\">([^<]+)</span>",
        card,
    )
    assert lines == [
        ("ok", "on", "valid", "gw-1", f"expires {day(30)}, in 30 days"),  # the earliest
        ("warning", "warn", "renew soon", "gw-2", f"expires {day(10)}, in 10 days"),
        ("expired", "down", "expired", "gw-3", f"expired {day(-1)}, 1 day ago"),
    ]
    assert "HTTPS certificates</h2>" in card and "sluice tls install CERT KEY" in card
    assert 'id="certificates"' in refresh
