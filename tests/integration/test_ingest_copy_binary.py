"""The gateway's binary COPY: every value reaches PostgreSQL as it was, in both log tables."""

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from engine.db import connection_pool
from engine.errors import DatabaseError, DatabaseUnavailable, InvalidRequest
from engine.gateway.ingest import GroupCommit
from engine.gateway.log_table import LogTable
from engine.store import ingest_log
from engine.store.ingest_log import Row

# Text that COPY's text format would have to escape, and text beyond ASCII.
_AWKWARD = [
    ("plain", b'{"type":"track","event":"a"}'),
    ("tab\tnew\nline\r\\back", b'{\n\t"type": "track", "event": "q\\"\\\\\\u00e9"}'),
    ("caf\u00e9-\u2028-\U0001f600", '{"type":"track","event":"\u00e9\u2028\U0001f600"}'.encode()),
    ("x" * 3000, b'{"type":"track","p":"' + b"y" * 40_000 + b'"}'),
]


def _source_id(url: str) -> str:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT id::text FROM sources WHERE name = 'website'").fetchone()
    assert found is not None
    return str(found[0])


@pytest.mark.parametrize("older_readers", [False, True], ids=["ingest_events", "ingest_log"])
async def test_binary_rows_are_stored_as_given(workspace_config: str, older_readers: bool) -> None:
    source_id = _source_id(workspace_config)
    received = ["2026-12-07T10:00:00.123Z", datetime.now(UTC).isoformat(timespec="milliseconds")]
    rows = [
        Row(source_id, partition, received[partition % 2], message_id, payload)
        for partition, (message_id, payload) in enumerate(_AWKWARD)
    ]
    pool = connection_pool(workspace_config)
    await pool.open()
    try:
        async with pool.connection() as conn:
            await ingest_log.append(conn, rows, older_readers=older_readers)
    finally:
        await pool.close()

    table = "ingest_log" if older_readers else "ingest_events"
    with psycopg.connect(workspace_config) as conn:
        stored = conn.execute(
            f"SELECT source_id::text, partition, received_at, message_id, payload::text"
            f" FROM {table} ORDER BY tx, id"
        ).fetchall()
    assert stored == [
        (
            row.source_id,
            row.partition,
            datetime.fromisoformat(row.received_at),
            row.message_id,
            row.payload.decode(),
        )
        for row in rows
    ]


async def _commit_each(url: str, *requests: list[Row]) -> list[BaseException | None]:
    """Each request through one group commit; what each was answered (None: committed)."""
    pool = connection_pool(url)
    await pool.open()
    log_table = LogTable(pool)
    commit = GroupCommit(pool, window=0.01, max_rows=100, max_inflight=1, log_table=log_table)
    commit.start()
    try:
        answers = await asyncio.gather(*(commit.append(rows) for rows in requests),
                                       return_exceptions=True)  # fmt: skip
    finally:
        await commit.stop()
        await pool.close()
    return list(answers)


def _stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [m for (m,) in conn.execute("SELECT message_id FROM ingested ORDER BY tx, id")]


async def test_a_value_postgresql_refuses_rejects_its_request_alone(workspace_config: str) -> None:
    source_id = _source_id(workspace_config)
    received = datetime.now(UTC).isoformat()
    good = [Row(source_id, 1, received, "good", b'{"type":"track"}')]
    bad = [Row(source_id, 2, received, "bad", b'{"type":')]  # (json the type refuses)
    answers = await _commit_each(workspace_config, good, bad, good)
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], InvalidRequest)
    assert "the database refused it" in str(answers[1])
    assert _stored_ids(workspace_config) == ["good", "good"]


async def test_data_postgresql_cannot_read_is_not_blamed_on_the_events(
    workspace_config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault of the encoder, not of a value: the requests are answered 503 (the client keeps
    # the events and retries; with a spool, they are spooled), never 400 (the client drops them).
    source_id = _source_id(workspace_config)
    received = datetime.now(UTC).isoformat()
    monkeypatch.setattr(ingest_log, "copy_binary", lambda rows: b"PGCOPY\n\xff\r\n\x00broken")
    rows = [Row(source_id, 1, received, "kept", b'{"type":"track"}')]
    pool = connection_pool(workspace_config)
    await pool.open()
    try:
        async with pool.connection() as conn:
            with pytest.raises(DatabaseError, match="COPY data is malformed"):
                await ingest_log.append(conn, rows, older_readers=False)
    finally:
        await pool.close()
    answers = await _commit_each(workspace_config, rows)
    assert isinstance(answers[0], DatabaseUnavailable)
    assert _stored_ids(workspace_config) == []
