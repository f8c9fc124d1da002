"""The events read model, against a real PostgreSQL: the newest events with filters, a search
walked back page by page, and what became of one event at each destination."""

import asyncio
from typing import Any

import psycopg
from psycopg.types.json import Json

from engine.control import events, workspace
from engine.control.events import Page
from engine.db import connection
from engine.partitions import partition_of
from engine.position import Position
from engine.store.ingest_log import Filters
from tests.conftest import apply_config

WORKSPACE = """
sources: [{name: web, write_key: events-web-key}, {name: ios, write_key: events-ios-key}]
transformations:
  - name: drop-all
    code: "export function transformEvent(event) { return null; }"
destinations:
  - {name: hook, type: webhook, config: {webhookUrl: "https://hook.example.com/in",
     headers: [{from: Authorization, to: "Bearer hook-secret-token"}]}}
  - name: orders only
    type: webhook
    config: {webhookUrl: "https://o.example.com", eventFilteringOption: whitelistedEvents,
             whitelistedEvents: [{eventName: Order Completed}]}
  - {name: dropped, type: webhook, config: {webhookUrl: "https://d.example.com"}}
connections:
  - {source: web, destination: hook}
  - {source: web, destination: orders only}
  - {source: web, destination: dropped, transformation: drop-all}
"""


def stored(database_url: str, source: str, *messages: dict[str, Any]) -> list[tuple[str, int]]:
    """Events as the gateway stores them, one transaction each; their (tx, id)."""
    points = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM sources WHERE name = %s", (source,)).fetchone()
        assert row is not None
        for message in messages:
            user = message.get("userId") or message["anonymousId"]
            point = conn.execute(
                "INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)"
                " VALUES (%s, %s, now(), %s, %s) RETURNING tx::text, id",
                (row[0], partition_of(user), message["messageId"], Json(message)),
            ).fetchone()
            assert point is not None
            points.append((point[0], point[1]))
    return points


def track(n: int, name: str = "Product Viewed", user: str = "u1") -> dict[str, Any]:
    return {"type": "track", "event": name, "userId": user, "messageId": f"m{n}"}


def page_of(database_url: str, filters: Filters | None = None, **options: Any) -> Page:
    async def go() -> Page:
        async with connection(database_url) as conn:
            return await events.recent(conn, filters or Filters(), **options)

    return asyncio.run(go())


def test_the_newest_events_first_with_filters(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    pricing = {"type": "page", "name": "Pricing", "anonymousId": "anon-7", "messageId": "m3"}
    stored(database_url, "web", track(1), track(2, "Order Completed"), pricing)
    stored(database_url, "ios", track(4, user="u2"))
    with psycopg.connect(database_url) as conn:
        web = conn.execute("SELECT id FROM sources WHERE name = 'web'").fetchone()
    assert web is not None

    def ids(filters: Filters) -> list[str]:
        return [e.message_id for e in page_of(database_url, filters).events]

    assert ids(Filters()) == ["m4", "m3", "m2", "m1"]
    assert ids(Filters(source=web[0])) == ["m3", "m2", "m1"]
    assert ids(Filters(type="page")) == ["m3"]
    assert ids(Filters(name="Order Completed")) == ["m2"]
    assert ids(Filters(name="Pricing")) == ["m3"]  # a page's name
    assert ids(Filters(user="anon-7")) == ["m3"]  # an anonymousId
    assert ids(Filters(user="u2")) == ["m4"]
    newest = page_of(database_url).events[0]
    assert (newest.type, newest.name, newest.user_id) == ("track", "Product Viewed", "u2")


def test_a_search_walks_back_a_bounded_number_of_events_per_page(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    stored(database_url, "web", track(0, "Signed Up"), *(track(n) for n in range(1, 26)))
    rare = Filters(name="Signed Up")
    first = page_of(database_url, rare, scan=10)
    assert first.events == [] and first.more is not None  # not among the 10 newest
    second = page_of(database_url, rare, scan=10, before=first.more)
    assert second.events == [] and second.more is not None
    third = page_of(database_url, rare, scan=10, before=second.more)
    assert [e.message_id for e in third.events] == ["m0"] and third.more is None  # the end
    # paging without a filter: a full page says where the next one starts
    full = page_of(database_url, limit=5)
    assert [e.message_id for e in full.events] == ["m25", "m24", "m23", "m22", "m21"]
    after = page_of(database_url, limit=5, before=full.more)
    assert after.events[0].message_id == "m20"
    # a live page asks for what came after its newest row
    newer = stored(database_url, "web", track(26))
    fresh = page_of(database_url, after=full.events[0].position)
    assert [e.message_id for e in fresh.events] == ["m26"]
    assert fresh.events[0].position == Position.of(*newer[0])


def test_what_became_of_an_event_at_each_destination(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    [(tx, ingest_id)] = stored(database_url, "web", track(1))
    [(later_tx, later_id)] = stored(database_url, "web", track(2, user="u9"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT l.received_at, l.source_id, l.partition, d.id FROM ingested l, destinations d"
            " WHERE l.id = %s AND d.name = 'hook'",
            (ingest_id,),
        ).fetchone()
        assert row is not None
        received_at, source, partition, hook = row
        job = conn.execute(
            "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
            " ingest_id, received_at, message_id, event_type, request) VALUES (%s, %s, %s, 'u1',"
            " %s::xid8, %s, %s, 'm1', 'track', %s) RETURNING id, created_at",
            (hook, source, partition, tx, ingest_id, received_at,
             Json({"method": "POST", "url": "https://hook.example.com/in",
                   "headers": {"authorization": "Bearer hook-secret-token"}, "body": {}})),
        ).fetchone()  # fmt: skip
        assert job is not None
        for attempt, state, status in ((1, "retry", 503), (2, "delivered", 200)):
            conn.execute(
                "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt,"
                " state, status_code, response) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (job[0], job[1], hook, attempt, state, status, f"answer {attempt}"),
            )
        # the processor has read the first event's partition past it, not the second's
        conn.execute(
            "UPDATE processor_positions SET tx = %s::xid8, id = %s WHERE partition = %s",
            (tx, ingest_id, partition),
        )

    async def go(tx: str, ingest_id: int) -> Any:
        async with connection(database_url) as conn:
            found = await conn.execute("SELECT received_at FROM ingested WHERE id = %s",
                                       (ingest_id,))  # fmt: skip
            at = (await found.fetchone())[0]  # type: ignore[index]
            return await events.trace(conn, Position.of(tx, ingest_id), at)

    event, outcomes = asyncio.run(go(tx, ingest_id))
    assert event.message_id == "m1"
    by_name = {o.destination: o for o in outcomes}
    assert {n: o.status for n, o in by_name.items()} == {
        "hook": "delivered", "orders only": "filtered", "dropped": "dropped",
    }  # fmt: skip
    [made] = by_name["hook"].jobs
    assert [(t.attempt, t.state, t.status) for t in made.tries] == [
        (1, "retry", 503), (2, "delivered", 200),
    ]  # fmt: skip
    assert made.request["headers"]["authorization"] == "****"  # masked
    assert "hook-secret-token" not in str(made.request)
    assert by_name["hook"].detail == "accepted on try 2"
    _, waiting = asyncio.run(go(later_tx, later_id))
    assert {o.status for o in waiting} == {"waiting"}

    # once the destination is deleted its secrets are unknown: its requests are not shown
    async def delete_hook() -> None:
        async with connection(database_url) as conn:
            await workspace.delete(conn, "destination", "hook")

    asyncio.run(delete_hook())
    _, after = asyncio.run(go(tx, ingest_id))
    [gone] = [o for o in after if o.destination == "(deleted destination)"]
    [made] = gone.jobs
    assert made.request is None and {t.response for t in made.tries} == {None}
    assert [t.state for t in made.tries] == ["retry", "delivered"]
