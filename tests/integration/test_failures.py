"""Replaying failed jobs, against a real PostgreSQL: bundles of a file destination."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import psycopg
from psycopg.types.json import Json

from engine.control import failures
from engine.control.failures import ReplayReport
from engine.db import connection
from engine.partitions import partition_of
from engine.store.jobs import FailedJob
from engine.transformations.seam import Metadata, Transformed
from tests.conftest import apply_config
from tests.delivery import sluice

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
                "INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)"
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


HOOKS = """
sources: [{name: app, write_key: failures-test-key}]
destinations:
  - {name: hook-a, type: webhook, config: {webhookUrl: "https://a.example.com/in"}}
  - {name: hook-b, type: webhook, config: {webhookUrl: "https://b.example.com/in"}}
connections: [{source: app, destination: hook-a}, {source: app, destination: hook-b}]
"""


_SENT = '{"method": "POST", "url": "https://a.example.com/in"}'


def failing(
    database_url: str, destination: str, count: int, state: str = "aborted", request: str = _SENT
) -> list[int]:
    """`count` events of user u, each with a job for `destination` whose latest attempt is
    `state` (its stored `request` as given); their job ids."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT s.id, d.id FROM sources s, destinations d WHERE d.name = %s", (destination,)
        ).fetchone()
        assert row is not None
        source, target = row
        jobs = []
        for _ in range(count):
            message = f"m-{uuid4()}"
            event = {"type": "track", "userId": "u", "event": "Order Completed",
                     "messageId": message}  # fmt: skip
            logged = conn.execute(
                "INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)"
                " VALUES (%s, %s, now(), %s, %s) RETURNING tx::text, id",
                (source, partition_of("u"), message, Json(event)),
            ).fetchone()
            assert logged is not None
            job = conn.execute(
                "INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx,"
                " ingest_id, received_at, message_id, event_type, event_name, request)"
                " VALUES (%s, %s, %s, 'u', %s::xid8, %s, now(), %s, 'track', 'Order Completed',"
                " %s) RETURNING id, created_at",
                (target, source, partition_of("u"), logged[0], logged[1], message, request),
            ).fetchone()
            assert job is not None
            conn.execute(
                "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt,"
                " state, status_code, error, next_retry_at) VALUES (%s, %s, %s, 1, %s, 500,"
                " 'HTTP 500', CASE WHEN %s = 'retry' THEN now() + interval '1 minute' END)",
                (job[0], job[1], target, state, state),
            )
            jobs.append(job[0])
    return jobs


def states(database_url: str, jobs: Sequence[int]) -> list[str]:
    """The latest attempt's state of each job."""
    with psycopg.connect(database_url) as conn:
        return [
            conn.execute(
                "SELECT state FROM job_attempts WHERE job_id = %s ORDER BY attempt DESC LIMIT 1",
                (job,),
            ).fetchone()[0]  # type: ignore[index]
            for job in jobs
        ]


def test_a_replay_goes_batch_by_batch_and_leaves_what_failed_after_it_began(
    database_url: str,
) -> None:
    apply_config(database_url, HOOKS)
    first = failing(database_url, "hook-a", 230)

    async def go() -> tuple[list[int], int, list[FailedJob]]:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            selection = failures.Selection(destination="hook-a")
            started = await failures.now(conn)
            assert await failures.count(conn, selection, started) == 230
            later = failing(database_url, "hook-a", 1)  # fails while the replay runs
            done, cursor, steps = [], failures.START, 0
            while True:
                report, following = await failures.replay_step(
                    conn, Untouched(), selection, started, cursor
                )
                steps += 1
                done.append(report.replayed)
                if following is None:
                    break
                cursor = following
            assert later
            return done, steps, await failures.failed(conn, selection)

    done, steps, left = asyncio.run(go())
    assert done == [100, 100, 30] and steps == 3
    assert [job.event_name for job in left] == ["Order Completed"]  # only the later failure
    assert set(states(database_url, first)) == {"replayed"}
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE id > %s", (max(first),)).fetchone()
    assert row is not None and row[0] == 1 + 230  # the later failure, and the replayed jobs


def test_discarding_the_selected_jobs_or_all_of_a_destination(database_url: str) -> None:
    apply_config(database_url, HOOKS)
    a = failing(database_url, "hook-a", 5)
    b = failing(database_url, "hook-b", 3)
    waiting = failing(database_url, "hook-b", 2, state="retry")

    async def go() -> tuple[int, int, int, int, list[FailedJob]]:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            picked = await failures.discard(conn, failures.Selection(job_ids=(a[0], a[3], b[0])))
            everything_b = await failures.discard(conn, failures.Selection(destination="hook-b"))
            left_a = await failures.count(conn, failures.Selection(destination="hook-a"))
            left_b = await failures.count(conn, failures.Selection(destination="hook-b"))
            retrying = await failures.failed(conn, retrying=True)
            return picked, everything_b, left_a, left_b, retrying

    picked, everything_b, left_a, left_b, retrying = asyncio.run(go())
    assert (picked, everything_b, left_a, left_b) == (3, 2, 3, 0)
    assert states(database_url, a) == ["discarded", "aborted", "aborted", "discarded", "aborted"]
    assert set(states(database_url, b)) == {"discarded"}
    # jobs still being retried are listed apart, with their next try, and never discarded
    assert sorted(job.job_id for job in retrying) == waiting
    assert all(job.next_retry_at is not None and job.status_code == 500 for job in retrying)
    assert set(states(database_url, waiting)) == {"retry"}


def test_the_failed_list_shows_a_request_with_its_numbers_as_written(database_url: str) -> None:
    apply_config(database_url, HOOKS)
    request = '{"method":"POST","url":"https://a.example.com/in","body":{"price":1.50,"n":7}}'
    [job] = failing(database_url, "hook-a", 1, request=request)
    [line] = sluice(database_url, "failed", "list", "--json").splitlines()
    assert '"price":1.50' in line  # (it was a crash: a decimal kept as text)
    shown = json.loads(line)
    assert shown["job_id"] == job and shown["request"]["body"] == {"price": 1.5, "n": 7}


def test_a_key_replaced_since_a_job_was_made_stays_masked_in_what_is_shown(
    database_url: str,
) -> None:
    settings = "{webhookUrl: 'https://a.example.com/in', headers: [{from: X-Api-Key, to: %s}]}"
    config = HOOKS.replace('{webhookUrl: "https://a.example.com/in"}', settings)
    apply_config(database_url, config % "old-key-4f2a9c")
    sent = '{"method":"POST","url":"https://a.example.com/in","headers":{"X-Api-Key":"%s"}}'
    failing(database_url, "hook-a", 1, request=sent % "old-key-4f2a9c")
    apply_config(database_url, config % "new-key-81d3e0")  # the key is replaced
    failing(database_url, "hook-a", 1, request=sent % "new-key-81d3e0")
    listed = sluice(database_url, "failed", "list", "--json")
    assert "old-key-4f2a9c" not in listed and "new-key-81d3e0" not in listed
    assert listed.count('"X-Api-Key":"****"') == 2


def test_the_cli_discards_and_replays_chosen_jobs(database_url: str) -> None:
    apply_config(database_url, HOOKS)
    jobs = failing(database_url, "hook-a", 3)
    out = sluice(database_url, "failed", "discard", "--job", str(jobs[0]), "--job", str(jobs[2]))
    assert out.strip() == "discarded 2 failed job(s)"
    out = sluice(database_url, "failed", "replay", "--job", str(jobs[1]))
    assert out.splitlines()[0] == "replayed 1 failed job(s) as 1 new job(s)"
    assert states(database_url, jobs) == ["discarded", "replayed", "discarded"]
    assert sluice(database_url, "failed", "list").strip() == "no failed jobs"
