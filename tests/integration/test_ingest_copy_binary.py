"""The gateway's binary COPY: every value reaches PostgreSQL as it was, in both log tables."""

from datetime import UTC, datetime

import psycopg
import pytest

from engine.db import connection_pool
from engine.store import ingest_log
from engine.store.ingest_log import Row

# Text that COPY's text format would have to escape, and text beyond ASCII.
_AWKWARD = [
    ("plain", b'{"type":"track","event":"a"}'),
    ("tab\tnew\nline\r\\back", b'{\n\t"type": "track", "event": "q\\"\\\\\\u00e9"}'),
    ("caf\u00e9-\u2028-\U0001f600", '{"type":"track","event":"\u00e9\u2028\U0001f600"}'.encode()),
    ("x" * 3000, b'{"type":"track","p":"' + b"y" * 40_000 + b'"}'),
]


@pytest.mark.parametrize("older_readers", [False, True], ids=["ingest_events", "ingest_log"])
async def test_binary_rows_are_stored_as_given(workspace_config: str, older_readers: bool) -> None:
    with psycopg.connect(workspace_config) as conn:
        found = conn.execute("SELECT id::text FROM sources WHERE name = 'website'").fetchone()
    assert found is not None
    source_id = found[0]
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
