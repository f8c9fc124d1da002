"""The processor and housekeeping against a real PostgreSQL, in this process."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Json, Jsonb

from engine.db import connection, connection_pool
from engine.partitions import partition_of
from engine.pipeline import topology
from engine.pipeline.housekeeping import housekeep
from engine.pipeline.leases import LeaseLost, Leases
from engine.pipeline.metrics import WorkerMetrics
from engine.pipeline.processing.mapping import route
from engine.pipeline.processing.processor import Processor
from engine.sql import Queries
from engine.store import ingest_log
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore
from tests.conftest import apply_config

CONFIG = """
sources:
  - {name: website, write_key: processor-test-key}
  - {name: app, write_key: processor-app-key}
destinations:
  - {name: hook, type: webhook, config: {webhookUrl: "http://127.0.0.1:9/in"}}
connections: [{source: website, destination: hook}, {source: app, destination: hook}]
"""


def _source_id(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("SELECT id FROM sources WHERE name = 'website'").fetchone()
    assert row is not None
    return row[0]


def _insert(
    conn: psycopg.Connection[Any],
    source_id: Any,
    message_id: str,
    hours_ago: float = 0,
    *,
    user: str = "u",
    table: str = "ingest_events",  # ingest_log: as an older version wrote it
) -> None:
    conn.execute(
        f"INSERT INTO {table} (source_id, partition, received_at, message_id, payload) "
        "VALUES (%s, %s, now() - make_interval(hours => %s), %s, %s)",
        (source_id, partition_of(user), hours_ago, message_id,
         Json({"type": "track", "userId": user, "event": "E", "messageId": message_id})),
    )  # fmt: skip


async def _processor(
    url: str,
    batch_size: int = 2000,
    leases: Leases | None = None,
    partitions: range | list[int] = range(64),
) -> tuple[Processor, Any]:
    pool = connection_pool(url)
    await pool.open()
    async with connection(url) as conn:
        view = await topology.load(conn)
    processor = Processor(
        pool, lambda: view, JavaScript(CodeStore(pool).code), WorkerMetrics(),
        partitions=partitions, dedup_window=timedelta(hours=24), batch_size=batch_size,
        leases=leases,
    )  # fmt: skip
    return processor, pool


def _jobs(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT message_id FROM jobs ORDER BY id")]


@pytest.fixture
def configured(database_url: str) -> str:
    apply_config(database_url, CONFIG)
    return database_url


async def test_a_transaction_still_open_holds_back_later_commits(configured: str) -> None:
    database_url = configured
    processor, pool = await _processor(database_url)
    with psycopg.connect(database_url) as slow, psycopg.connect(database_url) as quick:
        source_id = _source_id(quick)
        _insert(slow, source_id, "first")  # its transaction stays open
        _insert(quick, source_id, "second")
        quick.commit()
        await processor.step()
        assert _jobs(database_url) == []  # "second" must not be read before "first" commits
        slow.commit()
        await processor.step()
    assert _jobs(database_url) == ["first", "second"]
    assert await processor.step() == 0  # the position moved past both
    await pool.close()


@pytest.mark.parametrize("batch_size", [2000, 1], ids=["one batch", "a batch each"])
async def test_a_message_id_is_a_duplicate_only_within_the_window(
    configured: str, batch_size: int
) -> None:
    database_url = configured  # the window: 24 hours
    processor, pool = await _processor(database_url, batch_size)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source_id = _source_id(conn)
        # In commit order, with the hours before now each was received.
        for message_id, hours_ago in (
            ("m", 30), ("m", 3), ("m", 1), ("n", 0), ("n", 26), ("o", 50), ("o", 30), ("o", 10)
        ):  # fmt: skip
            _insert(conn, source_id, message_id, hours_ago)
    while await processor.step():
        pass
    await pool.close()
    # m at 3 h ago is 27 h after the first (not a duplicate), m at 1 h ago 2 h after that one
    # (a duplicate); the second n was committed after the first but received 26 h before it:
    # a clock jump, not a repeat within the window. o 10 h ago repeats the o of 30 h ago (itself
    # a repeat): within the window of an earlier one, so a duplicate too.
    assert _jobs(database_url) == ["m", "m", "n", "n", "o"]
    with psycopg.connect(database_url) as conn:
        counted = conn.execute(
            "SELECT sum(events)::int FROM stats_minute WHERE outcome = 'duplicate'"
        ).fetchone()
    assert counted == (3,)


async def test_a_message_id_repeats_only_from_the_same_source_and_user(configured: str) -> None:
    database_url = configured
    processor, pool = await _processor(database_url, batch_size=1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source_id = _source_id(conn)
        other = conn.execute("SELECT id FROM sources WHERE name = 'app'").fetchone()
        assert other is not None
        _insert(conn, source_id, "m", user="u")
        _insert(conn, source_id, "m", user="w")  # another user (in another partition)
        _insert(conn, other[0], "m", user="u")  # another source
        _insert(conn, source_id, "m", user="u")  # the repeat
    assert partition_of("u") != partition_of("w")
    while await processor.step():
        pass
    await pool.close()
    assert _jobs(database_url) == ["m", "m", "m"]


async def test_the_ids_kept_are_those_of_the_batchs_partitions_past_their_positions(
    configured: str,
) -> None:
    # The duplicate check reads the batch's rows again between its first and last: the rows of
    # other partitions and those a previous owner read already lie between them too.
    database_url = configured
    mine = [partition_of("u"), partition_of("v")]
    assert partition_of("w") not in mine and mine[0] != mine[1]
    processor, pool = await _processor(database_url, partitions=mine)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source_id = _source_id(conn)
        for message_id, user in (("u0", "u"), ("v0", "v"), ("w0", "w"), ("u1", "u"), ("v1", "v")):
            _insert(conn, source_id, message_id, user=user)
        conn.execute(  # v0 was read by a previous owner of v's partition
            "UPDATE processor_positions SET (tx, id) = (SELECT tx, id FROM ingested"
            " WHERE message_id = 'v0') WHERE partition = %s",
            (mine[1],),
        )
    assert await processor.step() == 4
    await pool.close()
    assert _jobs(database_url) == ["u0", "u1", "v1"]
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT message_id FROM seen_messages ORDER BY message_id").fetchall()
    assert kept == [("u0",), ("u1",), ("v1",)]


@pytest.mark.parametrize("batch_size", [2000, 1], ids=["one batch", "a batch each"])
async def test_an_event_an_older_version_stored_is_an_earlier_duplicate(
    configured: str, batch_size: int
) -> None:
    """Until its days are dropped, the log an older version wrote (`ingest_log`, indexed by
    message id) counts for duplicates, as the events it holds may be read with the new ones."""
    database_url = configured
    processor, pool = await _processor(database_url, batch_size)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source_id = _source_id(conn)
        _insert(conn, source_id, "m", table="ingest_log")
        _insert(conn, source_id, "m")
        _insert(conn, source_id, "n")
        _insert(conn, source_id, "n", table="ingest_log")
    while await processor.step():
        pass
    await pool.close()
    assert _jobs(database_url) == ["m", "n"]


def test_a_repeated_message_id_does_not_make_each_append_cost_more(configured: str) -> None:
    # A hash index kept every entry of one messageId in one bucket, whose whole chain of
    # overflow pages each insert walked: a client repeating its ids slowed every later commit.
    # (The message ids are indexed where the processor keeps those it has seen.)
    with psycopg.connect(configured, autocommit=True) as conn:
        source_id = _source_id(conn)
        conn.execute(
            "INSERT INTO seen_messages (partition, source_id, received_at, message_id)"
            " SELECT 0, %s, now(), 'same' FROM generate_series(1, 30000)",
            (source_id,),
        )
        plan = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) INSERT INTO seen_messages"
            " (partition, source_id, received_at, message_id) VALUES (0, %s, now(), 'same')",
            (source_id,),
        ).fetchone()
    assert plan is not None
    top = plan[0][0]["Plan"]
    pages = top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert pages < 20, f"one more row with a repeated messageId touched {pages} pages"


def _nodes(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"]] + [n for sub in plan.get("Plans", []) for n in _nodes(sub)]


def test_the_log_is_read_in_index_order_even_with_statistics_the_backlog_outgrew(
    configured: str,
) -> None:
    # A backlog grows past the (tx, id) values of the last ANALYZE: estimating the rows past a
    # position from them, the planner took tens of thousands for a few hundred and sorted them
    # all for every batch of 2,000 (an Append and a Sort on disk instead of a Merge Append of
    # the (tx, id) indexes read in order).
    fill = sql.SQL("""
        DO $$ BEGIN FOR t IN 1..{txs} LOOP
            INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)
            SELECT {source}, g % 64, now(), md5(random()::text),
                   json_build_object('type', 'track', 'userId', 'u' || g, 'p', repeat('x', 400))
            FROM generate_series(1, {rows}) g;
            COMMIT;  -- (a transaction each, as the gateway's commits)
        END LOOP; END $$""")
    with psycopg.connect(configured, autocommit=True) as conn:
        source = sql.Literal(_source_id(conn))
        conn.execute(fill.format(txs=sql.Literal(50), source=source, rows=sql.Literal(20)))
        day = conn.execute("SELECT tableoid::regclass::text FROM ingest_events LIMIT 1").fetchone()
        assert day is not None
        conn.execute(f"ALTER TABLE {day[0]} SET (autovacuum_enabled = false)")
        conn.execute("ANALYZE ingest_events")
        conn.execute(fill.format(txs=sql.Literal(1500), source=source, rows=sql.Literal(40)))
        middle = conn.execute(
            "SELECT tx::text, id FROM ingest_events ORDER BY tx, id OFFSET 30000 LIMIT 1"
        ).fetchone()
        assert middle is not None
        read = Queries.beside(ingest_log.__file__, "ingest_log.sql")["read"]
        params = {"tx": middle[0], "id": middle[1], "partitions": list(range(64)), "limit": 2000}
        found = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {read}", params).fetchone()
    assert found is not None
    plan = found[0][0]["Plan"]
    assert "Sort" not in _nodes(plan) and plan["Actual Rows"] == 2000
    assert plan["Temp Written Blocks"] == 0 and plan["Shared Hit Blocks"] < 1000


async def test_a_batch_read_ahead_is_used_only_from_where_the_positions_are(
    configured: str,
) -> None:
    database_url = configured
    processor, pool = await _processor(database_url, batch_size=2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        source_id = _source_id(conn)
        for n in range(7):
            _insert(conn, source_id, f"e{n}")
    assert await processor.step() == 2  # e0, e1; e2 and e3 are read ahead meanwhile
    assert await processor.step() == 2  # ... and used: e2, e3; e4, e5 read ahead
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Another owner of the partitions got as far as e4 in between: what was read ahead
        # from e3 is not used, e4 is not processed twice.
        conn.execute(
            "UPDATE processor_positions SET (tx, id) = (SELECT tx, id FROM ingested"
            " WHERE message_id = 'e4')"
        )
    assert await processor.step() == 2  # e5, e6
    assert await processor.step() == 0
    await pool.close()
    assert _jobs(database_url) == ["e0", "e1", "e2", "e3", "e5", "e6"]


@pytest.fixture
def routing_held(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """(routing, go): the processor's batches wait in routing, `routing` set, until `go` is."""
    routing, go = asyncio.Event(), asyncio.Event()

    async def held(*args: Any) -> Any:
        routing.set()
        await go.wait()
        return await route(*args)

    monkeypatch.setattr("engine.pipeline.processing.processor.route", held)
    return routing, go


async def test_a_lease_renewal_does_not_wait_for_a_batch_in_progress(
    configured: str, routing_held: tuple[asyncio.Event, asyncio.Event]
) -> None:
    database_url = configured
    leases = Leases("process", "host-a:1")
    async with _batch_in_routing(database_url, leases, routing_held) as (conn, step):
        # The batch's transaction is open, and the leases are renewed meanwhile, not after
        # its commit.
        assert len(await asyncio.wait_for(leases.renew(conn), 5)) == 64
        routing_held[1].set()
        assert await step == 1
    assert _jobs(database_url) == ["e0"]


@contextlib.asynccontextmanager
async def _batch_in_routing(
    database_url: str, leases: Leases, routing_held: tuple[asyncio.Event, asyncio.Event]
) -> AsyncIterator[tuple[Any, asyncio.Task[int]]]:
    """A processor's step on one event (e0) under `leases`, held in routing (until the second
    event of `routing_held` is set), with a connection of the test's own."""
    routing, _ = routing_held
    processor, pool = await _processor(database_url, leases=leases)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, _source_id(conn), "e0")
    try:
        async with connection(database_url) as conn:
            await conn.set_autocommit(True)
            await leases.renew(conn)
            step = asyncio.create_task(processor.step())
            await asyncio.wait_for(routing.wait(), 10)
            yield conn, step
    finally:
        await pool.close()


async def test_a_batch_whose_lease_is_lost_before_its_commit_commits_nothing(
    configured: str, routing_held: tuple[asyncio.Event, asyncio.Event]
) -> None:
    database_url = configured
    a, b = Leases("process", "host-a:1", ttl=1), Leases("process", "host-b:1", ttl=1)
    async with _batch_in_routing(database_url, a, routing_held) as (conn, step):
        await asyncio.sleep(1.2)  # a's leases expire while its batch is in hand...
        assert await b.renew(conn) == frozenset(range(64))  # ...and b takes them over
        routing_held[1].set()
        with pytest.raises(LeaseLost):
            await step
    assert _jobs(database_url) == []
    with psycopg.connect(database_url) as conn:  # and its positions did not move
        assert conn.execute(
            "SELECT count(*) FROM processor_positions WHERE (tx, id) > ('0', 0)"
        ).fetchone() == (0,)


async def test_expired_partitions_are_dropped_once_every_job_is_settled(configured: str) -> None:
    database_url = configured
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("jobs", "job_attempts", "ingest_events", "seen_messages"):
            conn.execute(
                "SELECT sluice_ensure_daily_partitions(%s, current_date - 12, 3)", (table,)
            )
        dest = conn.execute("SELECT id FROM destinations").fetchone()
        assert dest is not None
        for days, settled in ((12, True), (11, False)):
            row = conn.execute(
                "INSERT INTO jobs (created_at, destination_id, source_id, partition, user_key,"
                " ingest_tx, ingest_id, received_at, message_id, event_type, request)"
                " VALUES (now() - make_interval(days => %s), %s, %s, 0, 'u', '1', 1, now(), 'm',"
                " 'track', 'null') RETURNING id, created_at",
                (days, dest[0], uuid.uuid4()),
            ).fetchone()
            assert row is not None
            if settled:
                conn.execute(
                    "INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt,"
                    " state) VALUES (%s, %s, %s, 1, 'delivered')",
                    (row[0], row[1], dest[0]),
                )
        day = conn.execute("SELECT to_char(current_date - 12, 'YYYYMMDD')").fetchone()
    async with connection(database_url) as aconn:
        await aconn.set_autocommit(True)
        dropped = await housekeep(aconn, timedelta(days=7), dedup_window=timedelta(hours=24))
    assert day is not None
    d12 = day[0]
    assert f"jobs_p{d12}" in dropped and f"job_attempts_p{d12}" in dropped
    assert f"ingest_events_p{d12}" in dropped and f"seen_messages_p{d12}" in dropped
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r'")}
        kept = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert f"jobs_p{d12}" not in tables
    assert kept == (1,)  # the unsettled job's partition stays
    assert len([t for t in tables if t.startswith("jobs_p")]) >= 8  # the coming days exist


async def test_a_day_of_message_ids_stays_while_events_up_to_a_window_after_it_are_unread(
    configured: str,
) -> None:
    with psycopg.connect(configured, autocommit=True) as conn:
        for table in ("ingest_events", "seen_messages"):
            conn.execute(
                "SELECT sluice_ensure_daily_partitions(%s, current_date - 12, 3)", (table,)
            )
        conn.execute(
            "INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)"
            " VALUES (%s, %s, (current_date - 11)::timestamp AT TIME ZONE 'UTC' + interval '12h',"
            " 'm', %s)",
            (_source_id(conn), partition_of("u"), Json({"type": "track", "userId": "u"})),
        )  # within the window after the first day, and read by no one yet
        day = conn.execute("SELECT to_char(current_date - 12, 'YYYYMMDD')").fetchone()
    assert day is not None
    first = f"seen_messages_p{day[0]}"

    async def housekeeping() -> list[str]:
        async with connection(configured) as aconn:
            await aconn.set_autocommit(True)
            return await housekeep(aconn, timedelta(days=7), dedup_window=timedelta(hours=24))

    assert first not in await housekeeping()
    processor, pool = await _processor(configured)
    assert await processor.step() == 1
    await pool.close()
    assert first in await housekeeping()


async def test_messages_refused_by_the_gateway_are_kept_as_long_as_events(configured: str) -> None:
    with psycopg.connect(configured, autocommit=True) as conn:
        source_id = _source_id(conn)
        for days in (8, 6):
            conn.execute(
                "INSERT INTO gateway_rejections (received_at, source_id, reason, bytes, head)"
                " VALUES (now() - make_interval(days => %s), %s, 'too large', 40000, '{')",
                (days, source_id),
            )
    async with connection(configured) as aconn:
        await aconn.set_autocommit(True)
        await housekeep(aconn, timedelta(days=7), dedup_window=timedelta(hours=24))
    with psycopg.connect(configured) as conn:
        kept = conn.execute("SELECT count(*) FROM gateway_rejections").fetchone()
    assert kept == (1,)


async def test_a_destinations_earlier_settings_are_kept_while_jobs_made_under_them_may_be(
    configured: str,
) -> None:
    with psycopg.connect(configured, autocommit=True) as conn:
        conn.execute("SELECT sluice_ensure_daily_partitions('jobs', current_date - 12, 1)")
        for x in (1, 2, 1, 3):  # settings A, then B, A again, C
            conn.execute("UPDATE destinations SET config = config || %s", (Jsonb({"x": x}),))
            conn.execute("UPDATE destination_settings_retired SET retired_at = retired_at"
                         " - interval '5 days'")  # fmt: skip
        conn.execute("UPDATE destinations SET enabled = enabled")  # not a change of settings
        retired = conn.execute(
            "SELECT config->>'x', now() - retired_at > interval '14 days'"
            " FROM destination_settings_retired ORDER BY retired_at"
        ).fetchall()
        # (one destination; its first settings had no x; A, retired twice, is kept once)
        assert retired == [(None, True), ("2", False), ("1", False)]

    async def housekeeping() -> None:
        async with connection(configured) as aconn:
            await aconn.set_autocommit(True)
            await housekeep(aconn, timedelta(days=7), dedup_window=timedelta(hours=24))

    await housekeeping()  # jobs of 12 days ago may be left: what was replaced since stays
    with psycopg.connect(configured, autocommit=True) as conn:
        kept = conn.execute(
            "SELECT config->>'x' FROM destination_settings_retired ORDER BY retired_at"
        ).fetchall()
        assert kept == [("2",), ("1",)]  # the first, replaced 20 days ago, before any job left


async def test_the_ingest_log_is_frozen_a_day_at_a_time_not_vacuumed_for_inserts(
    configured: str,
) -> None:
    """Only appended to, and dropped a day at a time: the vacuums PostgreSQL starts as a table
    grows (which slowed the gateway while they ran) are off for every partition of the log (the
    table of older versions too) and of the message ids seen, and their TOAST tables, those made
    later included; the jobs, which are updated, keep theirs. Instead, housekeeping freezes each
    day of them once the day is over."""
    logs = ("ingest_log", "ingest_events", "seen_messages")
    with psycopg.connect(configured, autocommit=True) as conn:
        for table in (*logs, "jobs"):
            conn.execute(
                "SELECT sluice_ensure_daily_partitions(%s, current_date + 20, 1)", (table,)
            )
        # (the table from before partitioning covers every day up to tomorrow: out of the way)
        conn.execute("ALTER TABLE ingest_log DETACH PARTITION ingest_log_initial")
        for table in logs:
            conn.execute("SELECT sluice_ensure_daily_partitions(%s, current_date - 3, 1)", (table,))
        _insert(conn, _source_id(conn), "three-days-ago", hours_ago=72)
        options: dict[str, tuple[list[str], list[str]]] = {
            name: (table, toast)
            for name, table, toast in conn.execute(
                "SELECT c.relname, coalesce(c.reloptions, '{}'), coalesce(t.reloptions, '{}')"
                " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " LEFT JOIN pg_class t ON t.oid = c.reltoastrelid"
                " WHERE i.inhparent = ANY(%s::regclass[])",
                ([*logs, "jobs"],),
            )
        }
        later, past = conn.execute(
            "SELECT to_char(current_date + 20, 'YYYYMMDD'), to_char(current_date - 3, 'YYYYMMDD')"
        ).fetchone() or ("", "")
    for parent in logs:
        parts = {name: opts for name, opts in options.items() if name.startswith(f"{parent}_")}
        assert {f"{parent}_p{later}", f"{parent}_p{past}", f"{parent}_default"} <= set(parts)
        for heap, toast in parts.values():
            assert "autovacuum_vacuum_insert_threshold=-1" in heap
            assert "autovacuum_vacuum_insert_threshold=-1" in toast
    assert options[f"jobs_p{later}"] == ([], [])

    async def housekeep_and_count() -> dict[str, int]:
        async with connection(configured) as aconn:
            await aconn.set_autocommit(True)
            for _ in range(2):
                await housekeep(aconn, timedelta(days=7), dedup_window=timedelta(hours=24))
        with psycopg.connect(configured) as conn:
            return dict(
                conn.execute("SELECT relname, vacuum_count FROM pg_stat_user_tables").fetchall()
            )

    vacuums = await housekeep_and_count()
    for parent in ("ingest_log", "ingest_events"):
        assert vacuums[f"{parent}_p{past}"] == 1  # its day is over: frozen, and only once
        assert vacuums[f"{parent}_p{later}"] == 0
    # The processor has yet to read the event of three days ago, and to keep its message id.
    assert vacuums[f"seen_messages_p{past}"] == 0
    processor, pool = await _processor(configured)
    assert await processor.step() == 1
    await pool.close()
    vacuums = await housekeep_and_count()
    for parent in logs:
        assert vacuums[f"{parent}_p{past}"] == 1
        assert vacuums[f"{parent}_p{later}"] == 0


async def test_how_far_behind_the_processor_is_counts_from_the_newest_event_of_a_full_batch(
    configured: str,
) -> None:
    # (engine/pressure.py: receipts are not in commit order — a spool drained late, gateways on
    # other hosts — so the newest of the batch, not its last, says how far behind it is.)
    with psycopg.connect(configured, autocommit=True) as conn:
        for message_id, hours_ago in (("e0", 3), ("e1", 5), ("e2", 1)):  # (e1: spooled)
            _insert(conn, _source_id(conn), message_id, hours_ago)
        received: dict[str, datetime] = dict(
            conn.execute("SELECT message_id, received_at FROM ingested").fetchall()
        )
    processor, pool = await _processor(configured, batch_size=2)
    try:
        assert await processor.step() == 2
        assert processor.behind_since == received["e0"]  # a full batch: more may wait
        assert await processor.step() == 1
        assert processor.behind_since is None  # the rest: caught up
    finally:
        await pool.close()
