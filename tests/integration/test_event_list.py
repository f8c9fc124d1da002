"""The Events list against a real PostgreSQL: each row's statuses, judged for the whole page as
the event page judges one event, rows read again by position, and the search box's filters."""

import asyncio
from typing import Any

import psycopg
from psycopg.types.json import Json

from engine.control import events
from engine.db import connection
from engine.position import Position
from engine.store.ingest_log import Filters
from tests.conftest import apply_config
from tests.integration.test_events import WORKSPACE, page_of, stored, track


def _job(conn: psycopg.Connection[Any], event: int, request: Any, *tries: tuple[str, int]) -> None:
    """A job for `hook` made of the event (row id), with these tries (state, HTTP status)."""
    row = conn.execute(
        "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,"
        " received_at, message_id, event_type, request)"
        " SELECT d.id, l.source_id, l.partition, 'u', l.tx, l.id, l.received_at, l.message_id,"
        " 'track', %s FROM ingested l, destinations d WHERE l.id = %s AND d.name = 'hook'"
        " RETURNING id, created_at, destination_id",
        (Json(request), event),
    ).fetchone()
    assert row is not None
    for attempt, (state, status) in enumerate(tries, 1):
        conn.execute(
            "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state,"
            " status_code, error) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (*row, attempt, state, status, None if status == 200 else f"HTTP {status}"),
        )


def test_a_pages_statuses_are_the_event_pages(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    sent = {"method": "POST", "url": "https://hook.example.com/in", "body": {}}
    points = stored(database_url, "web", *(track(n, user=f"u{n}") for n in range(5)))
    ids = [ingest_id for _, ingest_id in points]
    with psycopg.connect(database_url, autocommit=True) as conn:
        _job(conn, ids[0], sent, ("delivered", 200))
        _job(conn, ids[1], sent, ("retry", 503))
        _job(conn, ids[2], sent, ("retry", 503), ("aborted", 400))
        _job(conn, ids[3], None, ("aborted", 0))  # refused before a request was made
        # the processor has read past every event but the last
        conn.execute("UPDATE processor_positions SET tx = %s::xid8, id = %s",
                     (points[3][0], points[3][1]))  # fmt: skip

    async def judged() -> tuple[dict[int, Any], dict[int, Any]]:
        async with connection(database_url) as conn:
            page = await events.recent(conn)
            listed = await events.statuses(conn, page.events)
            one = {}
            for e in page.events:
                found = await events.trace(conn, e.position, e.received_at)
                assert found is not None
                one[e.id] = found[1]
            return listed, one

    listed, one = asyncio.run(judged())

    def said(outcomes: list[events.Outcome]) -> dict[str, tuple[str, str]]:
        return {o.destination: (o.status, o.detail) for o in outcomes}

    assert {i: said(o) for i, o in listed.items()} == {i: said(o) for i, o in one.items()}
    hook = {i: said(listed[i])["hook"][0] for i in ids}
    assert hook == {ids[0]: "delivered", ids[1]: "retrying", ids[2]: "failed",
                    ids[3]: "failed", ids[4]: "waiting"}  # fmt: skip
    assert said(listed[ids[0]])["orders only"][0] == "filtered"
    assert said(listed[ids[0]])["dropped"][0] == "dropped"


def test_rows_read_again_by_position_in_the_order_asked(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    points = [Position.of(*p) for p in stored(database_url, "web", track(1), track(2))]

    async def listed(positions: list[Position]) -> list[str]:
        async with connection(database_url) as conn:
            return [e.message_id for e in await events.listed(conn, positions)]

    gone = Position(points[1].tx, points[1].id + 1000)
    assert asyncio.run(listed([points[1], gone, points[0]])) == ["m2", "m1"]


def test_search_by_message_id_a_value_at_a_path_or_any_text(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    pro = {**track(1), "properties": {"plan": "pro", "note": "Big NEEDLE"}}
    stored(database_url, "web", pro, {**track(2), "properties": {"plan": "free", "n": 50}})

    def ids(text: str) -> list[str]:
        return [e.message_id for e in page_of(database_url, events.search(text)).events]

    assert ids("m2") == ["m2"]  # a messageId
    assert ids("properties.plan=pro") == ["m1"]
    assert ids("properties.n=50") == ["m2"]  # a number, as its text
    assert ids("properties.plan=gold") == []
    assert ids("needle") == ["m1"]  # any case
    assert ids("%") == []  # (no wildcard)
    assert ids("Product Viewed") == ["m2", "m1"]
    assert page_of(database_url, Filters(text="nothing like it")).searched == 2
