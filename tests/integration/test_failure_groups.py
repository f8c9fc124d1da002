"""The Failed page's services against a real PostgreSQL: failures grouped by destination and
kind, what a replay's jobs came to, and failures settled by a person leaving the counters."""

import asyncio
from datetime import datetime

import psycopg

from engine.control import failures, stats
from engine.db import connection
from tests.conftest import apply_config
from tests.integration.test_failures import HOOKS, Untouched, failing


def test_failures_group_by_destination_status_and_error_and_a_group_is_selected(
    database_url: str,
) -> None:
    apply_config(database_url, HOOKS)
    refused = failing(database_url, "hook-a", 3)
    unknown = failing(database_url, "hook-b", 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE job_attempts SET status_code = NULL,"
            " error = 'could not connect to a.example.com:443: connection refused'"
            " WHERE job_id = %s",
            (refused[0],),
        )
        for job, user in zip(unknown, ["4ad1c0a2-51b6-4f0e-9d2b-0c3c1c7e9a10", "73920011"],
                             strict=True):  # fmt: skip
            conn.execute(
                "UPDATE job_attempts SET error = %s WHERE job_id = %s",
                (f"HTTP 500: no such user {user} at 2026-12-07T10:00:01Z", job),
            )

    async def go() -> tuple[list[tuple[str, int | None, str | None, int, int]], int]:
        async with connection(database_url) as conn:
            until = await failures.now(conn)
            found = await failures.groups(conn, failures.Selection(), until)
            top = await failures.groups(conn, failures.Selection(), until, limit=1)
            assert [g.jobs for g, _ in top] == [2]  # the most frequent, counted whole
            assert all(sample is not None and sample.job_id == g.sample_id for g, sample in found)
            http_500 = next(g for g, _ in found if g.destination == "hook-a" and g.status_code)
            chosen = failures.Selection(destination="hook-a", group=http_500.key)
            return [(g.destination, g.status_code, g.error, g.jobs, g.variants)
                    for g, _ in found], await failures.count(conn, chosen, until)  # fmt: skip

    found, chosen = asyncio.run(go())
    assert sorted(found, key=str) == sorted([
        ("hook-a", 500, "HTTP 500", 2, 1),
        ("hook-a", None, "could not connect to a.example.com:443: connection refused", 1, 1),
        # one kind, whatever the user id and time in the error (the latest one's shown)
        ("hook-b", 500, "HTTP 500: no such user 73920011 at 2026-12-07T10:00:01Z", 2, 2),
    ], key=str)  # fmt: skip
    assert chosen == 2


def test_a_replays_jobs_are_told_apart_as_sending_delivered_failed_again_or_settled_since(
    database_url: str,
) -> None:
    apply_config(database_url, HOOKS)
    failing(database_url, "hook-a", 4)
    failing(database_url, "hook-b", 1)  # another destination's: not replayed
    replayed = failures.Selection(destination="hook-a")

    async def replay() -> tuple[datetime, tuple[int, int], failures.Outcomes]:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            since, first = await failures.now(conn), await failures.last_job(conn)
            await failures.replay(conn, Untouched(), replayed, since)
            made = (first, await failures.last_job(conn))
            nothing = failures.Outcomes(0, 0, 0, 0, 0)
            assert await failures.outcomes(conn, made, since, "hook-b") == nothing
            return since, made, await failures.outcomes(conn, made, since, "hook-a")

    since, made, sending = asyncio.run(replay())
    assert sending == failures.Outcomes(0, 0, 0, 0, 4)
    with psycopg.connect(database_url, autocommit=True) as conn:
        again = [row[0] for row in conn.execute(
            "SELECT id FROM jobs WHERE id > %s AND id <= %s ORDER BY id", made
        ).fetchall()]  # fmt: skip
        for job, state in zip(again, ["delivered", "aborted", "aborted", "aborted"], strict=False):
            conn.execute(
                "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state)"
                " SELECT id, created_at, destination_id, 1, %s FROM jobs WHERE id = %s",
                (state, job),
            )

    async def later() -> failures.Outcomes:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            # failed again, then someone replayed one (its new job is another replay's) and
            # discarded another
            await failures.replay(conn, Untouched(), failures.Selection(job_ids=(again[2],)))
            await failures.discard(conn, failures.Selection(job_ids=(again[3],)))
            return await failures.outcomes(conn, made, since, "hook-a")

    assert asyncio.run(later()) == failures.Outcomes(1, 1, 1, 1, 0)  # (were 3 failed, 1 sending)


def test_failures_replayed_or_discarded_stop_counting_as_failed(database_url: str) -> None:
    apply_config(database_url, HOOKS)
    jobs = failing(database_url, "hook-a", 3)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # as the worker counted them: at its transaction's minute
        conn.execute(
            "INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)"
            " SELECT date_trunc('minute', a.at), j.source_id, j.destination_id, 'aborted', 3"
            " FROM jobs j JOIN job_attempts a ON a.job_id = j.id WHERE j.id = %s",
            (jobs[0],),
        )

    async def go() -> dict[str, int]:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            await failures.discard(conn, failures.Selection(job_ids=(jobs[0],)))
            await failures.replay(conn, Untouched(), failures.Selection(job_ids=(jobs[1],)))
            activity = await stats.recent(conn)
            return {o: activity.count(o) for o in ("aborted", "discarded", "replayed")}

    assert asyncio.run(go()) == {"aborted": 1, "discarded": 1, "replayed": 1}


def counted_at(database_url: str, jobs: list[int], at: list[str], aborted: dict[str, int]) -> None:
    """The jobs' failures happened at `at` (seconds after a minute ten minutes ago, '-5' the
    minute before); the worker counted `aborted` events at these minutes ('0', '-1', …)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        base = "date_trunc('minute', now()) - interval '10 minutes'"
        for job, seconds in zip(jobs, at, strict=True):
            conn.execute(f"UPDATE job_attempts SET at = {base} + %s * interval '1 second'"
                         " WHERE job_id = %s", (float(seconds), job))  # fmt: skip
        for minute, events in aborted.items():
            conn.execute(
                "INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)"
                f" SELECT {base} + %s * interval '1 minute', source_id, destination_id,"
                " 'aborted', %s FROM jobs WHERE id = %s",
                (int(minute), events, jobs[0]),
            )


def outcomes_counted(database_url: str) -> dict[tuple[int, str], int]:
    """(minutes before ten minutes ago, outcome) → events, of the rows that hold any."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM minute - (date_trunc('minute', now())"
            " - interval '10 minutes'))::int / 60, outcome, events"
            " FROM stats_minute WHERE events > 0"
        ).fetchall()
    return {(minute, outcome): events for minute, outcome, events in rows}


def test_failures_either_side_of_a_minute_settled_in_one_batch_leave_no_failure_counted(
    database_url: str,
) -> None:
    apply_config(database_url, HOOKS)
    jobs = failing(database_url, "hook-a", 5)
    # two failed a moment into the next minute, counted by a transaction begun in this one
    # (whose own failures are counted there too); one counted in the minute before its own
    counted_at(database_url, jobs, ["0.2", "59.9", "60.1", "60.3", "-50"], {"0": 4, "-2": 1})

    async def go() -> int:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            return await failures.discard(conn, failures.Selection(destination="hook-a"))

    assert asyncio.run(go()) == 5  # (it raised CardinalityViolation, again at each try)
    assert outcomes_counted(database_url) == {(0, "discarded"): 4, (-2, "discarded"): 1}


def test_a_replay_moves_a_failure_counted_partly_in_the_minute_before(database_url: str) -> None:
    apply_config(database_url, HOOKS)
    jobs = failing(database_url, "hook-a", 2)
    counted_at(database_url, jobs, ["0.1", "0.2"], {"0": 1, "-1": 1})

    async def go() -> None:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            await failures.replay(conn, Untouched(), failures.Selection(destination="hook-a"))

    asyncio.run(go())
    assert outcomes_counted(database_url) == {(0, "replayed"): 1, (-1, "replayed"): 1}
