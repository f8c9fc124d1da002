"""Retention: partitions created ahead of time, expired ones dropped whole.

Run by the worker's scheduler. A partition is dropped only when its whole day is older than
the retention window *and* nothing in it is still needed: every ingest row read by the
processor, every job delivered or aborted (a job and its attempts go together).
"""

import logging
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from engine.sql import Queries

_Q = Queries.beside(__file__, "housekeeping.sql")
log = logging.getLogger(__name__)

DAYS_AHEAD = 8
STATS_RETENTION = timedelta(days=90)


async def housekeep(conn: psycopg.AsyncConnection[Any], retention: timedelta) -> list[str]:
    """Create the coming days' partitions, drop the expired ones; return what was dropped.

    `conn` is in autocommit mode: each drop is its own short transaction.
    """
    await conn.execute(_Q["ensure_partitions"], {"days": DAYS_AHEAD})
    await conn.execute(_Q["delete_old_stats"], {"retention": STATS_RETENTION})
    await conn.execute(_Q["delete_old_latency"], {"retention": STATS_RETENTION})
    await conn.execute(_Q["delete_old_names"], {"retention": STATS_RETENTION})
    cur = await conn.execute(_Q["expired_partitions"], {"retention": retention})
    dropped = []
    for name, parent in await cur.fetchall():
        if parent == "ingest_log":
            dropped += await _drop_if(conn, "unprocessed_in", [name])
        else:
            twin = await conn.execute(_Q["attempts_partition"], {"jobs": name})
            attempts = [row[0] for row in await twin.fetchall()]
            dropped += await _drop_if(conn, "unsettled_in", [name, *attempts])
    return dropped


async def _drop_if(conn: psycopg.AsyncConnection[Any], check: str, names: list[str]) -> list[str]:
    """Drop `names` (one transaction) unless `check` finds rows in the first still needed."""
    async with conn.transaction():
        first = sql.Identifier(names[0])
        cur = await conn.execute(sql.SQL(_Q[check]).format(partition=first))
        row = await cur.fetchone()
        if row is None or row[0]:
            log.info("retention: %s is past retention but still needed; kept", names[0])
            return []
        for name in names:
            await conn.execute(sql.SQL(_Q["drop_partition"]).format(partition=sql.Identifier(name)))
    log.info("retention: dropped %s", ", ".join(names))
    return names
