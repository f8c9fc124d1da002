"""Where the gateway appends: `ingest_events`, unless a worker of a version before it runs."""

import logging
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.types.json import Jsonb

from engine.db import connection_pool
from engine.gateway.ingest import GroupCommit
from engine.gateway.log_table import LogTable
from engine.heartbeats import READS_INGEST_EVENTS
from engine.store.ingest_log import Row


async def _append_with_a_look(url: str, source_id: str, message_id: str) -> bool:
    """Append one event after a first look at the running workers; whether it looked older."""
    pool = connection_pool(url)
    await pool.open()
    log_table = LogTable(pool)
    await log_table.start()
    commit = GroupCommit(pool, window=0, max_rows=100, max_inflight=1, log_table=log_table)
    commit.start()
    received = datetime.now(UTC).isoformat()
    await commit.append([Row(source_id, 0, received, message_id, b'{"type": "track"}')])
    await commit.stop()
    await log_table.stop()
    await pool.close()
    return log_table.older_readers


def _tables(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT message_id, 'ingest_log' FROM ingest_log"
            " UNION ALL SELECT message_id, 'ingest_events' FROM ingest_events"
        ).fetchall()
    return dict(found)


async def test_the_gateway_appends_where_every_running_worker_reads(workspace_config: str) -> None:
    url = workspace_config
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT id::text FROM sources WHERE name = 'website'").fetchone()
        assert found is not None
        source_id = found[0]
        conn.execute(
            "INSERT INTO heartbeats (host, pid, role, report) VALUES"
            " ('a', 1, 'worker', '{}'),"  # a worker of an earlier version: reads ingest_log alone
            " ('b', 2, 'worker', %(new)s), ('b', 3, 'worker/deliver', %(new)s),"
            " ('b', 4, 'gateway', '{}'), ('b', 5, 'web', '{}')",
            {"new": Jsonb({READS_INGEST_EVENTS: 1})},
        )
    assert await _append_with_a_look(url, source_id, "while-a-runs")
    with psycopg.connect(url, autocommit=True) as conn:
        # Killed: not heard from for longer than a live process ever is.
        conn.execute("UPDATE heartbeats SET seen_at = now() - interval '31 seconds' WHERE pid = 1")
    assert not await _append_with_a_look(url, source_id, "after-a-died")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO heartbeats (host, pid, role) VALUES ('c', 6, 'worker/process')")
    assert await _append_with_a_look(url, source_id, "while-c-runs")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM heartbeats WHERE host = 'c'")  # (as a clean stop does)
    assert not await _append_with_a_look(url, source_id, "after-c-stopped")
    assert _tables(url) == {
        "while-a-runs": "ingest_log",
        "after-a-died": "ingest_events",
        "while-c-runs": "ingest_log",
        "after-c-stopped": "ingest_events",
    }


async def test_until_it_can_look_the_gateway_appends_where_every_version_reads() -> None:
    log_table = LogTable(connection_pool("postgresql://sluice@127.0.0.1:1/none"))
    await log_table.start()  # (the database cannot be reached)
    assert log_table.older_readers
    await log_table.stop()


async def test_the_log_says_where_the_gateway_appends_only_when_it_is_news(
    workspace_config: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = connection_pool(workspace_config)
    await pool.open()
    with caplog.at_level(logging.INFO, logger="engine.gateway.log_table"):
        fresh = LogTable(pool)
        await fresh.start()  # no worker of an earlier version: nothing to say
        await fresh.stop()
        assert caplog.messages == []
        with psycopg.connect(workspace_config, autocommit=True) as conn:
            conn.execute("INSERT INTO heartbeats (host, pid, role) VALUES ('a', 1, 'worker')")
        older = LogTable(pool)
        await older.start()
        await older.stop()
    await pool.close()
    assert caplog.messages == [
        "appending to ingest_log: a worker of a version before 0021 is running"
    ]
