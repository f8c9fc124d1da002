"""The ingest log: every event the gateway accepted, as it stored it, partitioned by day; the
message ids the processor has seen, for finding duplicates; and how far the processor and the
raw-event archive have read the log, per user partition.

Every statement on these tables is here. The log is read in commit order (`engine.position`):
the processor and the archive read it the same way, each from positions of its own.
"""

import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from psycopg.errors import BadCopyFileFormat, InvalidBinaryRepresentation

from engine import copytext, db
from engine.db import Connection
from engine.errors import DatabaseError
from engine.libpq_copy import copy_in
from engine.position import Position
from engine.sql import Queries

_Q = Queries.beside(__file__, "ingest_log.sql")
_COPY_ROWS = _Q["copy_rows"].encode()
_COPY_ROWS_FOR_OLDER_READERS = _Q["copy_rows_for_older_readers"].encode()
_COPY_TEXT_ROWS = _Q["copy_text_rows"].encode()
_COPY_TEXT_ROWS_FOR_OLDER_READERS = _Q["copy_text_rows_for_older_readers"].encode()


class Row(NamedTuple):
    """One row as the gateway appends it."""

    source_id: str
    partition: int
    received_at: str  # ISO 8601, with its offset from UTC
    message_id: str
    payload: bytes  # JSON, UTF-8


# COPY's binary format: a signature, flags and the length of a header extension (none); then per
# row its number of fields and each field's length and value (PostgreSQL's "send" form); then -1.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
_PARTITION_AND_ID_LENGTH = struct.Struct(">ihi")
_LENGTH = struct.Struct(">i")
_LEADING = struct.Struct(">hi16siq")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # (a timestamptz is microseconds since it)


def copy_binary(rows: Iterable[Row]) -> bytes:
    """The gateway's COPY data, in the binary format, for `copy_rows`' columns.

    Cheaper for PostgreSQL than the text format: about a sixth of its time in a group commit
    went to scanning text rows for escapes and parsing timestamps and UUIDs. Values are sent as
    they are, without escapes.
    """
    parts = [_BINARY_HEADER]
    add = parts.append
    for row in rows:
        message_id = row.message_id.encode()
        add(_leading(row.source_id, row.received_at))
        add(_PARTITION_AND_ID_LENGTH.pack(2, row.partition, len(message_id)))
        add(message_id)
        add(_LENGTH.pack(len(row.payload)))
        add(row.payload)
    add(_BINARY_TRAILER)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _leading(source_id: str, received_at: str) -> bytes:
    """A row's field count, source id and receipt time: the same for all rows of a request."""
    micros = (datetime.fromisoformat(received_at) - _PG_EPOCH) // timedelta(microseconds=1)
    return _LEADING.pack(5, 16, UUID(source_id).bytes, 8, micros)


def copy_text(rows: Iterable[Row]) -> str:
    """COPY's text format, one tab-separated line per row, for `copy_text_rows`: what the spool
    keeps (a line is a row, to be refused alone).

    Message ids and payloads are user text (a payload is often the client's own JSON, with its
    whitespace), so backslashes, tabs, newlines and carriage returns are escaped in both.
    """
    escape = copytext.escape
    return "".join(
        f"{row.source_id}\t{row.partition}\t{row.received_at}\t"
        f"{escape(row.message_id)}\t{escape(row.payload.decode())}\n"
        for row in rows
    )


async def append(
    conn: Connection, rows: Iterable[Row], *, older_readers: bool, deadline: float | None = None
) -> None:
    """Append rows: in the caller's transaction, or, outside of one, committed by this one COPY
    (two round trips); cancelled if not done by `deadline` (the event loop's clock; see
    `engine.libpq_copy`). To `ingest_log` for `older_readers` (a worker of a version before
    0021 runs), else to `ingest_events`. Nobody is woken: see `wake`."""
    statement = _COPY_ROWS_FOR_OLDER_READERS if older_readers else _COPY_ROWS
    try:
        await copy_in(conn, statement, copy_binary(rows), deadline=deadline)
    except (BadCopyFileFormat, InvalidBinaryRepresentation) as exc:
        # PostgreSQL could not read the data itself: not a value's fault (which would reject
        # its request) but the encoder's, so the events are kept (spooled, or a 503 answered).
        raise DatabaseError(f"the gateway's COPY data is malformed: {db.describe(exc)}") from exc


async def append_text(conn: Connection, text: str, *, older_readers: bool) -> None:
    """Append rows given as `copy_text`, like `append`."""
    statement = _COPY_TEXT_ROWS_FOR_OLDER_READERS if older_readers else _COPY_TEXT_ROWS
    await copy_in(conn, statement, text.encode())


async def wake(conn: Connection) -> None:
    """Wake the processors at the commit: there are events to read."""
    await conn.execute(_Q["notify"])


async def announce(conn: Connection) -> None:
    """Wake the processors now, on a connection in autocommit, about rows already committed.
    Not waited to be durable: a notification lost in a crash only leaves the processors to
    find the rows at their next look (they look every few seconds regardless)."""
    await conn.execute(_Q["announce"])


class Logged(NamedTuple):
    """A row as the processor and the archive read it (the columns of the `read` query)."""

    id: int
    tx: str
    partition: int
    source_id: UUID
    received_at: datetime
    message_id: str
    payload: str  # the JSON text as stored

    @property
    def position(self) -> Position:
        return Position.of(self.tx, self.id)


async def read(
    conn: Connection, start: Position, partitions: Sequence[int], limit: int
) -> list[Logged]:
    """Up to `limit` rows of `partitions` past `start`, in commit order."""
    params = {**start.params(), "partitions": partitions, "limit": limit}
    return await db.tuples(conn, _Q["read"], params, Logged)


async def seen(conn: Connection, rows: Sequence[Logged], window: timedelta) -> set[int]:
    """The ids of the rows (the processor's batch in commit order, less those at or before
    their partition's position, under its lock) whose messageId came earlier within `window`,
    from the same source and user partition: in a row kept before, or in one an older version
    wrote. The rows' messageIds, duplicates too, are kept meanwhile, for the batches to come:
    call it in the transaction that advances the processor past them. (The rows' own earlier
    ones are the caller's to compare.)"""
    if not rows:
        return set()
    params = {**rows[0].position.params("first_"), **rows[-1].position.params("last_"),
              "partitions": sorted({row.partition for row in rows}), "window": window}  # fmt: skip
    return set(await db.column(conn, _Q["seen"], params))


async def lock_processor_positions(
    conn: Connection, partitions: Sequence[int]
) -> dict[int, Position]:
    """The processor's positions, locked until the transaction ends: whoever holds a
    partition's position row is its only processor."""
    cur = await conn.execute(_Q["lock_processor_positions"], {"partitions": partitions})
    return {partition: Position.of(tx, id_) for partition, tx, id_ in await cur.fetchall()}


async def advance_processor(conn: Connection, to: Position, partitions: Sequence[int]) -> None:
    await conn.execute(_Q["advance_processor"], {**to.params(), "partitions": partitions})


async def archive_positions(conn: Connection, partitions: Sequence[int]) -> dict[int, Position]:
    cur = await conn.execute(_Q["archive_positions"], {"partitions": partitions})
    return {partition: Position.of(tx, id_) for partition, tx, id_ in await cur.fetchall()}


async def advance_archive(conn: Connection, to: Position, partitions: Sequence[int]) -> None:
    await conn.execute(_Q["advance_archive"], {**to.params(), "partitions": partitions})


class Original(NamedTuple):
    """What a job's event was, for sending it through again."""

    id: int
    payload: str
    received_at: datetime
    message_id: str


async def originals(conn: Connection, members: Sequence[Position]) -> dict[int, Original]:
    """The rows still kept of these positions, by row id."""
    params = {"txs": [str(m.tx) for m in members], "ids": [m.id for m in members]}
    return {row.id: row for row in await db.tuples(conn, _Q["events"], params, Original)}


@dataclass(frozen=True)
class Filters:
    """Each left out (None) matches every event. `user` is a userId or an anonymousId."""

    source: UUID | None = None
    type: str | None = None
    name: str | None = None  # a track call's event, a page or screen call's name
    user: str | None = None
    # A value at a path in the payload (`properties.plan` = "pro": ("properties", "plan")).
    path: tuple[str, ...] | None = None
    value: str | None = None
    text: str | None = None  # the messageId, or text anywhere in the payload (any case)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    tx: str
    source_id: UUID
    partition: int
    received_at: datetime
    message_id: str
    type: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    payload: str  # the JSON text as stored

    @property
    def position(self) -> Position:
        return Position.of(self.tx, self.id)


class Walked(NamedTuple):
    """Where a walk back ended, how many rows it went through, and when its last was
    received."""

    last: Position
    rows: int
    received_at: datetime


def _walk(filters: Filters, before: Position, after: Position, scan: int) -> dict[str, Any]:
    return {**before.params("before_"), **after.params("after_"), "scan": scan,
            "source": filters.source, "type": filters.type, "name": filters.name,
            "user": filters.user, "value": filters.value, "text": filters.text,
            "path": list(filters.path) if filters.path else None}  # fmt: skip


async def newest(
    conn: Connection, filters: Filters, before: Position, after: Position, limit: int, scan: int
) -> list[StoredEvent]:
    """The newest rows matching `filters` among the `scan` newest between `after` and `before`
    (both excluded; only rows every older transaction has finished before), newest first."""
    params = {**_walk(filters, before, after, scan), "limit": limit}
    return await db.rows(conn, _Q["recent"], params, StoredEvent)


async def walked(
    conn: Connection, filters: Filters, before: Position, after: Position, scan: int
) -> Walked | None:
    """Where the walk of `newest` ended; None when it found no row at all."""
    cur = await conn.execute(_Q["walked"], _walk(filters, before, after, scan))
    found = await cur.fetchone()
    return None if found is None else Walked(Position.of(found[0], found[1]), found[2], found[3])


async def event(conn: Connection, at: Position, received_at: datetime | None) -> StoredEvent | None:
    """The row at a position (`received_at`, when known, spares looking in every day's
    partition); None when it is not (or no longer) kept."""
    params = {**at.params(), "at": received_at}
    return await db.row(conn, _Q["event"], params, StoredEvent)


async def listed(conn: Connection, positions: Sequence[Position]) -> list[StoredEvent]:
    """The rows still kept at these positions, in their order."""
    params = {"txs": [str(p.tx) for p in positions], "ids": [p.id for p in positions]}
    return await db.rows(conn, _Q["listed"], params, StoredEvent)


async def processor_positions(conn: Connection) -> dict[int, Position]:
    """How far the processor has read, per user partition (for many events at once)."""
    cur = await conn.execute(_Q["processor_positions"])
    return {partition: Position.of(tx, id_) for partition, tx, id_ in await cur.fetchall()}


async def processed(conn: Connection, at: Position, partition: int) -> bool:
    """Has the processor read past this row?"""
    return bool(await db.value(conn, _Q["processed"], {**at.params(), "partition": partition}))


async def processing(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """When the newest stored event was received, and the newest the processor read past."""
    cur = await conn.execute(_Q["processing"])
    found = await cur.fetchone()
    return (found[0], found[1]) if found else (None, None)


class Unprocessed(msgspec.Struct):
    """An event the processor has not read yet, as a backup keeps it."""

    source: str  # the source's name
    partition: int
    received_at: datetime
    message_id: str
    payload: str  # the JSON as stored


async def unprocessed(conn: Connection) -> list[Unprocessed]:
    """Every event the processor has not read yet, in commit order."""
    return await db.rows(conn, _Q["unprocessed"], None, Unprocessed)


async def restore(conn: Connection, event: Unprocessed) -> bool:
    """Append a backed-up event again, for the source of the same name; False when there is
    none by that name."""
    cur = await conn.execute(_Q["restore"], msgspec.structs.asdict(event))
    return cur.rowcount > 0


async def unread_before(conn: Connection, until: datetime) -> bool:
    """Whether the processor has yet to read an event received before `until`."""
    return bool(await db.value(conn, _Q["unread_before"], {"until": until}))


async def unprocessed_in(conn: Connection, partition: str) -> bool:
    """Whether the processor has yet to read a row of this day partition of the log."""
    return bool(await db.value(conn, db.naming(_Q["unprocessed_in"], partition=partition)))
