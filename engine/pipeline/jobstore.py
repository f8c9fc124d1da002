"""Writing router jobs, inside the caller's transaction.

Sendable jobs go in with one COPY; a job that failed before it could be sent (filters passed,
but the transformation or the mapping refused it) is written with its `aborted` attempt, so it
is visible and replayable like any delivery failure.
"""

from typing import Any

import psycopg

from engine import copytext
from engine.pipeline import stats
from engine.pipeline.routing import Routed
from engine.sql import Queries

_Q = Queries.beside(__file__, "jobstore.sql")


async def write(conn: psycopg.AsyncConnection[Any], routed: Routed) -> None:
    sendable = routed.sendable
    if sendable:
        async with conn.cursor() as cur, cur.copy(_Q["copy_jobs"]) as copy:
            # Every column but the last, `error`, which only failed jobs have.
            await copy.write("".join(copytext.line(job[:-1]) for job in sendable))
        await conn.execute(_Q["notify_jobs"])
    failed = routed.failed
    if failed:
        async with conn.cursor() as cur:
            await cur.executemany(_Q["insert_failed_job"], [job._asdict() for job in failed])
    await stats.add(conn, routed.counts)
