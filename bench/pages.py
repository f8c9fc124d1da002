"""Control-plane pages with a large store: how long each page takes to render.

Fills a private PostgreSQL (unless --database-url is given) with --events events over the last
two days — each with a delivered job for a webhook, one in a hundred aborted instead, and the
per-minute stats the worker would have written — then renders every page the UI has through
the real app in process (as a signed-in admin), five times each, and prints the median and the
slowest, and whether the plan of the events query reads any big table sequentially. Last, what
a worker's backlog publication costs when every job of the store lies past its router's buffer
(the unread count, capped at a million, and the publications that reuse it).

    python -m bench.pages [--events 1000000]
"""

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

from litestar.testing import AsyncTestClient

from bench.harness import database, prepare
from engine import specs
from engine.control import accounts, events
from engine.db import connection, connection_pool
from engine.pipeline.delivery.backlog import Held, Publisher
from engine.position import END, START, Position
from engine.store import ingest_log

PASSWORD = "bench-password-long-enough"
_BATCH = 20_000  # events per transaction while filling, as a gateway's commits would be


async def fill(url: str, count: int) -> None:
    await prepare(url, [
        specs.DestinationSpec(name="hook", type="webhook",
                                  config={"webhookUrl": "https://hook.example.com/in"}),
        specs.DestinationSpec(name="orders only", type="webhook", config={
            "webhookUrl": "https://o.example.com/in", "eventFilteringOption": "whitelistedEvents",
            "whitelistedEvents": [{"eventName": "Event 7"}]}),
    ])  # fmt: skip
    async with connection(url) as conn:
        await accounts.create(conn, "admin@example.com", "admin", PASSWORD)
    async with connection(url) as conn:
        await conn.set_autocommit(True)
        for start in range(0, count, _BATCH):
            await conn.execute(_FILL, {"first": start, "last": min(start + _BATCH, count) - 1,
                                       "count": count})  # fmt: skip
        for statement in _DERIVED:
            await conn.execute(statement)
        await conn.execute("VACUUM ANALYZE")


# One event every (2 days / count), the newest now: 10,000 users, 50 event names, a tenth of
# them identify calls and a tenth page calls.
_FILL = """
INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)
SELECT s.id, g %% 64, now() - interval '2 days' * (1 - g::float8 / %(count)s), 'bench-' || g,
       json_build_object(
           'type', CASE g %% 10 WHEN 0 THEN 'identify' WHEN 1 THEN 'page' ELSE 'track' END,
           'event', 'Event ' || g %% 50, 'userId', 'user-' || g %% 10000,
           'messageId', 'bench-' || g,
           'properties', json_build_object('price', g %% 100, 'currency', 'EUR'))
FROM generate_series(%(first)s::int, %(last)s::int) AS g, sources s
"""

_DERIVED = [
    """
    INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                      received_at, created_at, message_id, event_type, event_name, request)
    SELECT d.id, l.source_id, l.partition, l.payload->>'userId', l.tx, l.id, l.received_at,
           l.received_at + interval '50 ms', l.message_id, l.payload->>'type',
           l.payload->>'event', json_build_object('method', 'POST', 'url', d.config->>'webhookUrl',
                                                 'body', l.payload)
    FROM ingested l, destinations d WHERE d.name = 'hook'
    """,
    """
    INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state, at,
                              status_code, error, response)
    SELECT id, created_at, destination_id, 1,
           CASE WHEN id % 100 = 0 THEN 'aborted' ELSE 'delivered' END,
           created_at + interval '20 ms', CASE WHEN id % 100 = 0 THEN 400 ELSE 200 END,
           CASE WHEN id % 100 = 0 THEN 'HTTP 400' END, '{"ok": true}'
    FROM jobs
    """,
    """
    INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
    SELECT date_trunc('minute', received_at), source_id, '00000000-0000-0000-0000-000000000000',
           'received', count(*)
    FROM ingested GROUP BY 1, 2
    """,
    """
    INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
    SELECT date_trunc('minute', j.received_at), j.source_id, j.destination_id,
           CASE WHEN j.id % 100 = 0 THEN 'aborted' ELSE 'delivered' END, count(*)
    FROM jobs j GROUP BY 1, 2, 3, 4
    """,
]


async def render(url: str) -> list[tuple[str, list[float]]]:
    from tests.integration.test_web_security import csrf
    from ui.app import WebOptions, create_app

    async with connection(url) as conn:
        ids = await (await conn.execute(
            "SELECT (SELECT id FROM sources), (SELECT id FROM destinations WHERE name = 'hook'),"
            " (SELECT id FROM connections LIMIT 1)"
        )).fetchone()  # fmt: skip
        old = (await events.recent(conn, limit=1, scan=1, before=await _older(conn))).events[0]
    assert ids is not None
    source, hook, link = ids
    pages = [
        "/", "/stats?window=hour", "/stats?window=week", "/connections", f"/sources/{source}",
        f"/destinations/{hook}", f"/connections/{link}",
        "/events", "/events?type=identify", "/events?name=Event+7", "/events?user=user-42",
        "/events?name=no+such+event", "/events?q=bench-4242", "/events?q=properties.price=42",
        "/events?q=no+such+text", f"/events/{old.tx}/{old.id}?at={old.received_at.isoformat()}",
        "/failed", "/failed?view=retrying", "/alerts", "/destinations/new", "/users", "/audit",
    ]  # fmt: skip
    timings = []
    app = create_app(WebOptions(url, "http://127.0.0.1:8080"))
    async with AsyncTestClient(app) as client:
        form = {"_csrf_token": await csrf(client), "email": "admin@example.com",
                "password": PASSWORD}  # fmt: skip
        await client.post("/login", data=form)
        for path in pages:
            took = []
            for _ in range(5):
                started = time.perf_counter()
                answer = await client.get(path.replace("+00:00", "%2B00:00"))
                took.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            timings.append((path, took))
    return timings


async def _older(conn: Any) -> Position:
    """A point a day and a half back in the log: an event there is traced from an old page."""
    cur = await conn.execute(
        "SELECT tx::text, id FROM ingested WHERE received_at < now() - interval '36 hours'"
        " ORDER BY received_at DESC LIMIT 1"
    )
    row = await cur.fetchone()
    return Position.of(row[0], row[1])


async def plan(url: str) -> str:
    """The events query's plan for a filter that matches nothing: does it read big tables whole?"""
    async with connection(url) as conn:
        cur = await conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) " + ingest_log._Q["recent"],
            {"before_tx": str(END.tx), "before_id": 0, "after_tx": "0", "after_id": 0,
             "scan": events.SCAN, "limit": 50, "source": None, "type": None,
             "name": "no such event", "user": None, "path": None, "value": None, "text": None},
        )  # fmt: skip
        lines = [row[0] for row in await cur.fetchall()]
    seq = [line.strip() for line in lines if "Seq Scan" in line]
    total = next((line for line in lines if "Execution Time" in line), "").strip()
    return f"{total}; sequential scans: {seq or 'none'}"


async def publication(url: str) -> list[float]:
    """Milliseconds per backlog publication with the hook's every job unread, five times."""
    pool = connection_pool(url)
    await pool.open()
    try:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM destinations WHERE name = 'hook'")
            row = await cur.fetchone()
        assert row is not None
        unread = Held(0, 0, 0, None, START)
        publisher = Publisher(pool, lambda: {row[0]: unread}, lambda: range(64))
        took = []
        for _ in range(5):
            started = time.perf_counter()
            await publisher.publish()
            took.append((time.perf_counter() - started) * 1000)
        await publisher.clear()
        return took
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with database(args.database_url) as url:
        started = time.perf_counter()
        asyncio.run(fill(url, args.events))
        print(f"filled {args.events:,} events, jobs and attempts in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        print(f"events query, no match: {asyncio.run(plan(url))}")
        for path, took in asyncio.run(render(url)):
            print(f"{path[:60]:<62} median {statistics.median(took):7.1f} ms  "
                  f"slowest {max(took):7.1f} ms")  # fmt: skip
        first, *then = asyncio.run(publication(url))
        print(f"backlog publication, every job unread: {first:.1f} ms counting them, then "
              f"{statistics.median(then):.1f} ms (recounted after 50 s)")  # fmt: skip


if __name__ == "__main__":
    main()
