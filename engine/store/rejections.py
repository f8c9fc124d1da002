"""Messages the gateway refused out of a request, kept for the user to see why (each with the
first kilobytes of what was sent): every statement on `gateway_rejections`."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from engine import db
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "rejections.sql")

HEAD_BYTES = 2048  # how much of a refused message is kept


class Rejection(NamedTuple):
    """A refused message as the gateway keeps it."""

    received_at: str  # ISO 8601, as the gateway stamps events
    source_id: str
    reason: str
    bytes: int  # its size as sent
    head: str  # its first HEAD_BYTES, as text


class Rejected(NamedTuple):
    """A refused message as the UI and the CLI show it."""

    id: int
    received_at: datetime
    source: str  # the source's name
    reason: str
    bytes: int
    head: str


def head_of(message: bytes) -> str:
    """The first kilobytes of a message as text PostgreSQL can store, whatever was sent."""
    return message[:HEAD_BYTES].decode(errors="replace").replace("\x00", "")


async def append(conn: Connection, rejections: Sequence[Rejection]) -> None:
    columns = {field: [getattr(r, field) for r in rejections] for field in Rejection._fields}
    await conn.execute(_Q["append"], columns)


async def newest(conn: Connection, source: str | None, limit: int) -> list[Rejected]:
    """The most recent first, of one source (by name) or of all."""
    return await db.tuples(conn, _Q["newest"], {"source": source, "limit": limit}, Rejected)


async def forget(conn: Connection, retention: timedelta) -> None:
    await conn.execute(_Q["forget"], {"retention": retention})
