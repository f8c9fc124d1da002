"""Retention: partitions created ahead of time, expired ones dropped whole.

Run by the worker's scheduler. A partition is dropped only when its whole day is older than
the retention window *and* nothing in it is still needed: every ingest row read by the
processor, every job delivered or aborted (a job and its attempts go together); the message ids
the processor has seen go with the log's days. Counters older
than their own retention, and messages the gateway refused older than the events', are
deleted.

The ingest log's partitions, and the seen message ids', are not vacuumed while their day is
written (migrations 0020, 0021):
each is frozen once its day is over, so that no vacuum against transaction id wraparound has
to go through days of them at once later.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from engine import db
from engine.db import Connection
from engine.sql import Queries
from engine.store import counters, ingest_log, jobs, rejections

_Q = Queries.beside(__file__, "housekeeping.sql")
log = logging.getLogger(__name__)

DAYS_AHEAD = 8


async def housekeep(conn: Connection, retention: timedelta) -> list[str]:
    """Create the coming days' partitions, drop the expired ones; return what was dropped.

    `conn` is in autocommit mode: each drop is its own short transaction.
    """
    await conn.execute(_Q["ensure_partitions"], {"days": DAYS_AHEAD})
    await counters.forget(conn)
    await rejections.forget(conn, retention)
    await _freeze_closed_days(conn)
    cur = await conn.execute(_Q.compose("expired_partitions"), {"retention": retention})
    dropped = []
    for name, parent in await cur.fetchall():
        if parent in ("ingest_log", "ingest_events"):
            dropped += await _drop_if(conn, ingest_log.unprocessed_in, [name])
        elif parent == "seen_messages":
            dropped += await _drop_if(conn, _never, [name])
        else:
            attempts = await jobs.attempts_partition(conn, name)
            dropped += await _drop_if(conn, jobs.unsettled_in, [name, *attempts])
    return dropped


async def _freeze_closed_days(conn: Connection) -> None:
    cur = await conn.execute(_Q.compose("unfrozen_log_days"))
    for (name,) in await cur.fetchall():
        await conn.execute(db.naming(_Q["freeze_partition"], partition=name))
        log.info("retention: %s frozen, its day being over", name)


async def _never(conn: Connection, partition: str) -> bool:
    return False


async def _drop_if(
    conn: Connection, needed: Callable[[Connection, str], Awaitable[bool]], names: list[str]
) -> list[str]:
    """Drop `names` (one transaction) unless the first still holds rows that are `needed`."""
    async with conn.transaction():
        await conn.execute(_Q["lock_timeout"])
        if await needed(conn, names[0]):
            log.info("retention: %s is past retention but still needed; kept", names[0])
            return []
        for name in names:
            await conn.execute(db.naming(_Q["drop_partition"], partition=name))
    log.info("retention: dropped %s", ", ".join(names))
    return names
