"""Replaying failed jobs, against a real PostgreSQL: bundles of a file destination."""

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Json

from engine.db import connection
from engine.partitions import partition_of
from engine.pipeline import failures
from engine.pipeline.failures import ReplayReport
from engine.pipeline.transform import Metadata, Transformed
from tests.conftest import apply_config

CONFIG = """
sources: [{name: app, write_key: failures-test-key}]
destinations:
  - name: lake
    type: s3
    config: {bucketName: events-bucket, accessKeyID: AKIA1, accessKey: s3cret}
connections: [{source: app, destination: lake}]
"""


class Untouched:
    """No connection here has a transformation."""

    async def run(
        self, version: int, batch: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        raise AssertionError("no transformation should run")


def test_a_bundle_partly_past_retention_is_replayed_with_what_is_left_and_says_so(
    database_url: str,
) -> None:
    apply_config(database_url, CONFIG)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source, destination = conn.execute(
            "SELECT s.id, d.id FROM sources s, destinations d"
        ).fetchone() or (None, None)
        kept = []
        for n in range(2):
            row = conn.execute(
                "INSERT INTO ingest_log (source_id, partition, received_at, message_id, payload)"
                " VALUES (%s, %s, now(), %s, %s) RETURNING tx::text, id",
                (source, partition_of("u"), f"m{n}",
                 Json({"type": "track", "userId": "u", "event": "E", "messageId": f"m{n}"})),
            ).fetchone()  # fmt: skip
            assert row is not None
            kept.append(row)
        txs = [kept[0][0], kept[0][0], kept[1][0]]
        ids = [kept[0][1], kept[0][1] + 1_000_000, kept[1][1]]  # the middle one is gone
        job = conn.execute(
            "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
            " ingest_id, received_at, message_id, event_type, request, events, member_txs,"
            " member_ids) VALUES (%s, %s, %s, 'u', %s::xid8, %s, now(), 'm0', 'track',"
            ' \'{"method":"PUT","url":"s3://x","body":[{},{},{}]}\', 3, %s::xid8[], %s)'
            " RETURNING id, created_at",
            (destination, source, partition_of("u"), txs[0], ids[0], txs, ids),
        ).fetchone()
        assert job is not None
        conn.execute(
            "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state,"
            " error) VALUES (%s, %s, %s, 1, 'aborted', 'NoSuchBucket')",
            (job[0], job[1], destination),
        )

    async def replay() -> ReplayReport:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            return await failures.replay(conn, Untouched())

    report = asyncio.run(replay())
    assert (report.replayed, report.missing, report.missing_events) == (1, 0, 1)
    with psycopg.connect(database_url) as conn:
        again = conn.execute(
            "SELECT events, member_ids FROM jobs WHERE id > %s", (job[0],)
        ).fetchall()
    assert again == [(2, [ids[0], ids[2]])]
