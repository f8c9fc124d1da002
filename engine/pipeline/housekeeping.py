"""Retention: partitions created ahead of time, expired ones dropped whole.

Run by the worker's scheduler. A partition is dropped only when its whole day is older than
the retention window *and* nothing in it is still needed: every ingest row read by the
processor, every job delivered or aborted (a job and its attempts go together); a day of the
message ids the processor has seen, once it has read every event up to the window after it.
Counters older than their own retention, messages the gateway refused older than the
events', and a destination's earlier settings once no job made under them is left, are
deleted.

The ingest log's partitions, and the seen message ids', are not vacuumed while their day is
written (migrations 0020, 0021): each is frozen once its day is over (the message ids', once
the processor has read that day's events), so that no vacuum against transaction id wraparound
has to go through days of them at once later.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

from engine import db
from engine.db import Connection
from engine.sql import Queries
from engine.store import counters, ingest_log, jobs, rejections

_Q = Queries.beside(__file__, "housekeeping.sql")
log = logging.getLogger(__name__)

DAYS_AHEAD = 8


async def housekeep(
    conn: Connection, retention: timedelta, *, dedup_window: timedelta
) -> list[str]:
    """Create the coming days' partitions, drop the expired ones; return what was dropped.

    `conn` is in autocommit mode: each drop is its own short transaction.
    """
    await conn.execute(_Q["ensure_partitions"], {"days": DAYS_AHEAD})
    await counters.forget(conn)
    await rejections.forget(conn, retention)
    await conn.execute(_Q.compose("forget_retired_settings"), {"retention": retention})
    await _freeze_closed_days(conn)
    cur = await conn.execute(_Q.compose("expired_partitions"), {"retention": retention})
    dropped = []
    for name, parent, upper in await cur.fetchall():
        if parent in ("ingest_log", "ingest_events"):
            dropped += await _drop_if(conn, ingest_log.unprocessed_in, [name])
        elif parent == "seen_messages":
            # Events up to a window after its day may still be looked up in it.
            unread = partial(_unread_before, upper + dedup_window)
            dropped += await _drop_if(conn, unread, [name])
        else:
            attempts = await jobs.attempts_partition(conn, name)
            dropped += await _drop_if(conn, jobs.unsettled_in, [name, *attempts])
    return dropped


async def _freeze_closed_days(conn: Connection) -> None:
    cur = await conn.execute(_Q.compose("unfrozen_log_days"))
    for name, parent, upper in await cur.fetchall():
        if parent == "seen_messages" and await ingest_log.unread_before(conn, upper):
            continue  # the processor still adds the message ids of that day's events
        await conn.execute(db.naming(_Q["freeze_partition"], partition=name))
        log.info("retention: %s frozen, its day being over", name)


async def _unread_before(until: datetime, conn: Connection, partition: str) -> bool:
    return await ingest_log.unread_before(conn, until)


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
