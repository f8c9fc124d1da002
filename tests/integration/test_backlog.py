"""The backlog a router publishes, against a real PostgreSQL and a local HTTP server: what it
holds in memory, and a count of the jobs past its buffer it has not read yet."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import msgspec
import psycopg

from engine.db import connection_pool
from engine.destinations.base import ALL_TYPES, DestinationType, Request
from engine.destinations.filters import EventFilter
from engine.pipeline.delivery import backlog
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.backlog import Publisher
from engine.pipeline.delivery.router import BUFFER, DestinationRouter
from engine.pipeline.delivery.sender import Sender
from engine.pipeline.metrics import WorkerMetrics
from engine.pipeline.topology import Target
from engine.specs import DeliveryPolicy
from tests.integration.test_router import until
from tests.sink import Answer, Arrival, Sink


class Settings(msgspec.Struct):
    url: str


def _map(event: dict[str, Any], settings: Settings, now: datetime) -> list[Request]:
    return [Request("POST", settings.url, body=event)]


PLAIN = DestinationType(name="plain", title="Plain", settings=Settings, map=_map)
PAST_BUFFER = 700


def _refuse_one_hold_the_rest(arrival: Arrival) -> Answer:
    return Answer(500) if arrival.json()["u"] == "bad" else Answer(delay=30)


async def test_a_router_publishes_what_it_holds_and_counts_what_it_did_not_read(
    database_url: str,
) -> None:
    with Sink(_refuse_one_hold_the_rest) as sink:
        target = Target(
            uuid4(), "held", "plain", {}, True,
            DeliveryPolicy(concurrency=2, min_backoff_seconds=60, max_backoff_seconds=60),
            PLAIN, Settings(sink.url), None, EventFilter(ALL_TYPES),
        )  # fmt: skip
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, request)"
                " SELECT %(d)s, %(s)s, n %% 64, u, '0', 0,"
                "        CASE WHEN n = 0 THEN %(old)s ELSE now() END, 'm' || n, 'track',"
                "        json_build_object('method', 'POST', 'url', %(url)s::text,"
                "                          'body', json_build_object('u', u, 'n', n))"
                " FROM generate_series(0, %(last)s) n,"
                "      LATERAL (SELECT CASE WHEN n = 0 THEN 'bad' ELSE 'u' || n %% 50 END) x(u)",
                {"d": target.id, "s": uuid4(), "old": hour_ago, "url": sink.url,
                 "last": BUFFER + PAST_BUFFER - 1},
            )  # fmt: skip
        pool = connection_pool(database_url)
        await pool.open()
        sender = Sender()
        await sender.start()
        attempts = AttemptLog(pool, WorkerMetrics(), lambda: {})
        router = DestinationRouter(target, pool, sender, attempts, range(64))
        publisher = Publisher(pool, lambda: {target.id: router.held()}, lambda: range(64))
        tasks = [asyncio.create_task(router.run()), asyncio.create_task(attempts.run())]
        try:
            await until(lambda: router.held().jobs == BUFFER and router.held().retrying == 1)
            behind_since = router.behind_since()
            await publisher.publish()
            async with pool.connection() as conn:
                published = await backlog.current(conn)
            await publisher.clear()
            async with pool.connection() as conn:
                cleared = await backlog.current(conn)
        finally:
            await router.stop(0.5)
            await attempts.stop()
            for task in tasks:
                task.cancel()
            await sender.close()
            await pool.close()
    held = published[target.id]
    assert (held.jobs, held.events, held.unread) == (BUFFER, BUFFER, PAST_BUFFER)
    assert held.waiting == BUFFER + PAST_BUFFER and not held.capped
    assert held.retrying == 1  # "bad", refused once, waits a minute for its next try
    assert held.oldest_at == hour_ago  # its job was received first
    # Behind (more past its buffer) since its oldest job never tried: the one being retried
    # waits for its vendor, and its line is not counted (engine/pressure.py).
    assert behind_since is not None and behind_since > hour_ago
    assert len(sink.arrivals) == 3  # "bad" and two held: nothing more while those wait
    assert json.loads(sink.arrivals[0].body)["u"] == "bad"
    assert cleared == {}
