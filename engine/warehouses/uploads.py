"""What Sluice keeps about warehouse loads (the `warehouse_*` tables): each load with its
outcome, "Sync now" requests, each warehouse's schema as last seen, and what every host has
staged and not loaded yet."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb

from engine import db
from engine.db import Connection
from engine.sql import Queries
from engine.warehouses.schema import Columns

_Q = Queries.beside(__file__, "uploads.sql")
Status = Literal["waiting", "loading", "loaded", "failed"]


class Unfinished(msgspec.Struct):
    id: int
    source_id: UUID
    namespace: str
    files: list[str]
    attempts: int
    status: Status
    next_attempt_at: datetime | None


class Upload(msgspec.Struct):
    """A load, as the UI and `sluice warehouse status` show it."""

    id: int
    source_id: UUID
    namespace: str
    node: str
    events: int
    status: Status
    attempts: int
    error: str | None
    tables: dict[str, int]
    discards: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    first_event_at: datetime | None


class Staged(msgspec.Struct):
    files: int
    events: int
    oldest_event_at: datetime | None


class Table(msgspec.Struct):
    namespace: str
    table_name: str
    columns: Columns


async def unfinished(conn: Connection, node: str, destination: UUID) -> list[Unfinished]:
    params = {"node": node, "destination": destination}
    return await db.rows(conn, _Q["unfinished"], params, Unfinished)


async def create(
    conn: Connection,
    destination: UUID,
    source: UUID,
    node: str,
    namespace: str,
    files: Sequence[str],
    events: int,
    first_event_at: str | None,
) -> int:
    params = {
        "destination": destination, "source": source, "node": node, "namespace": namespace,
        "files": list(files), "events": events, "first_event_at": first_event_at,
    }  # fmt: skip
    found: int = await db.value(conn, _Q["create"], params)
    return found


async def start(conn: Connection, upload: int) -> int:
    """The load begins (again): its attempts so far, this one included."""
    found: int = await db.value(conn, _Q["start"], {"id": upload})
    return found


async def finish(conn: Connection, upload: int, tables: dict[str, int], discards: int) -> None:
    params = {"id": upload, "tables": Jsonb(tables), "discards": discards}
    await conn.execute(_Q["finish"], params)


async def fail(conn: Connection, upload: int, error: str, delay: float) -> None:
    await conn.execute(_Q["fail"], {"id": upload, "error": error, "delay": delay})


async def retry_now(conn: Connection, destination: UUID, upload: int) -> bool:
    """A failed load tried again at once; False if there is no such failed load."""
    cur = await conn.execute(_Q["retry_now"], {"id": upload, "destination": destination})
    return cur.rowcount > 0


async def save_schema(
    conn: Connection, destination: UUID, namespace: str, tables: dict[str, Columns]
) -> None:
    params: dict[str, Any] = {
        "destination": destination, "namespace": namespace,
        "tables": list(tables), "columns": [Jsonb(columns) for columns in tables.values()],
    }  # fmt: skip
    await conn.execute(_Q["save_schema"], params)


async def request_sync(conn: Connection, destination: UUID) -> None:
    """Ask the loaders to load what is staged now (they hear of it at commit)."""
    await conn.execute(_Q["request_sync"], {"destination": destination})
    await conn.execute(_Q["announce_sync"], {"destination": destination})


async def sync_requested(conn: Connection, destination: UUID) -> datetime | None:
    found: datetime | None = await db.value(
        conn, _Q["sync_requested"], {"destination": destination}
    )
    return found


async def answer_sync(conn: Connection, destination: UUID, started: datetime) -> None:
    await conn.execute(_Q["answer_sync"], {"destination": destination, "started": started})


async def last_started(conn: Connection, node: str, destination: UUID) -> datetime | None:
    params = {"node": node, "destination": destination}
    found: datetime | None = await db.value(conn, _Q["last_started"], params)
    return found


async def save_staged(conn: Connection, node: str, staged: dict[tuple[UUID, UUID], Staged]) -> None:
    """What this host has staged and not loaded, per destination and source (replacing what
    it said before)."""
    await conn.execute(_Q["forget_staged"], {"node": node})
    params = {
        "node": node,
        "destinations": [key[0] for key in staged],
        "sources": [key[1] for key in staged],
        "files": [s.files for s in staged.values()],
        "events": [s.events for s in staged.values()],
        "oldest": [s.oldest_event_at for s in staged.values()],
    }
    await conn.execute(_Q["save_staged"], params)


async def recent(conn: Connection, destination: UUID, limit: int = 50) -> list[Upload]:
    return await db.rows(conn, _Q["recent"], {"destination": destination, "limit": limit}, Upload)


async def schemas(conn: Connection, destination: UUID) -> list[Table]:
    return await db.rows(conn, _Q["schemas"], {"destination": destination}, Table)


async def staged(conn: Connection, destination: UUID) -> Staged:
    found = await db.row(conn, _Q["staged"], {"destination": destination}, Staged)
    assert found is not None  # an aggregate: always one row
    return found


class _StagedFor(Staged):
    destination_id: UUID


async def staged_by_destination(conn: Connection) -> dict[UUID, Staged]:
    """What waits to be loaded into each warehouse (those with nothing staged are left out)."""
    found = await db.rows(conn, _Q["staged_by_destination"], None, _StagedFor)
    return {row.destination_id: Staged(row.files, row.events, row.oldest_event_at) for row in found}


async def lock(conn: Connection, destination: UUID) -> bool:
    """This destination's load lock, held by the session until `unlock`; False if another
    host's loader holds it."""
    found: bool = await db.value(conn, _Q["lock"], {"destination": destination})
    return found


async def unlock(conn: Connection, destination: UUID) -> None:
    await conn.execute(_Q["unlock"], {"destination": destination})


async def discards(conn: Connection, destination: UUID) -> int:
    """Values the warehouse's columns could not take, over all its loads."""
    found: int = await db.value(conn, _Q["discards"], {"destination": destination})
    return found
