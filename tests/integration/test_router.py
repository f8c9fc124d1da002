"""A router in this process, against a real PostgreSQL and a local HTTP server."""

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

import msgspec
import psycopg

from engine.db import connection_pool
from engine.destinations.base import ALL_TYPES, Destination, Request
from engine.pipeline.attempts import AttemptLog
from engine.pipeline.filters import EventFilter
from engine.pipeline.policy import DeliveryPolicy
from engine.pipeline.router import DestinationRouter
from engine.pipeline.sender import Sender
from engine.pipeline.stats import WorkerMetrics
from engine.pipeline.topology import Target
from tests.sink import Sink


class Settings(msgspec.Struct):
    url: str


def _map(event: dict[str, Any], settings: Settings, now: datetime) -> list[Request]:
    return [Request("POST", settings.url, body=event)]


def _combine(requests: Sequence[Request]) -> Request:
    return Request("POST", requests[0].url, body=[r.body for r in requests])


BATCHING = Destination(
    name="batching", title="Batching", settings=Settings, map=_map, batch_size=10, combine=_combine
)


def _insert_jobs(url: str, destination: Any, jobs: list[tuple[str, int]], sink_url: str) -> None:
    with psycopg.connect(url) as conn:
        for user, n in jobs:
            request = json.dumps({"method": "POST", "url": sink_url, "body": {"u": user, "n": n}})
            conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, request)"
                " VALUES (%s, %s, 0, %s, '0', 0, now(), %s, 'track', %s)",
                (destination, uuid4(), user, f"{user}-{n}", request),
            )


async def test_batching_destinations_get_batches_and_users_keep_their_order(
    database_url: str,
) -> None:
    with Sink() as sink:
        target = Target(
            uuid4(), "batchy", "batching", {}, True, DeliveryPolicy(concurrency=2),
            BATCHING, Settings(sink.url), None, EventFilter(ALL_TYPES),
        )  # fmt: skip
        jobs = [(f"user-{n}", 0) for n in range(25)] + [("busy", n) for n in range(3)]
        _insert_jobs(database_url, target.id, jobs, sink.url)
        pool = connection_pool(database_url)
        await pool.open()
        sender = Sender()
        await sender.start()
        attempts = AttemptLog(pool, WorkerMetrics(), lambda: {})
        router = DestinationRouter(target, pool, sender, attempts, range(64))
        running = asyncio.create_task(router.run())
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while sum(len(a.json()) for a in sink.delivered) < len(jobs):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            arrivals = list(sink.delivered)
        finally:
            await router.stop(5)
            running.cancel()
            await attempts.stop()
            await sender.close()
            await pool.close()
    batches = [a.json() for a in arrivals]
    assert all(isinstance(b, list) and 1 <= len(b) <= 10 for b in batches)
    assert len(batches) < len(jobs) // 2  # they really travelled together
    events = [event for batch in batches for event in batch]
    assert sorted((e["u"], e["n"]) for e in events) == sorted(jobs)  # each exactly once
    assert [e["n"] for e in events if e["u"] == "busy"] == [0, 1, 2]
    # one job of a user per request: "busy" jobs never share a batch
    assert all(sum(e["u"] == "busy" for e in batch) <= 1 for batch in batches)
