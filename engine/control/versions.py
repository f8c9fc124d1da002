"""A transformation's history as the control plane shows it: its versions (saving changed code
appends one, by whoever saved it; connections run the newest; restoring an old one saves its
code again, so history is never rewritten) and the connections that run it."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from engine import db
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "versions.sql")


@dataclass(frozen=True)
class Summary:
    id: UUID
    name: str
    versions: int
    changed_at: datetime | None
    connections: int


@dataclass(frozen=True)
class Version:
    id: int
    created_at: datetime
    code: str
    saved_by: str | None  # as the audit log names people; None: from before that was kept


@dataclass(frozen=True)
class User:
    id: UUID  # the connection's
    source: str
    destination: str
    enabled: bool


async def overview(conn: Connection) -> list[Summary]:
    return await db.rows(conn, _Q["overview"], None, Summary)


async def history(conn: Connection, transformation: UUID, limit: int = 50) -> list[Version]:
    """The newest versions first."""
    return await db.rows(conn, _Q["history"], {"id": transformation, "limit": limit}, Version)


async def code(conn: Connection, transformation: UUID, version: int) -> str | None:
    """The code of one of the transformation's versions; None when it has no such version."""
    found = await db.value(conn, _Q["code"], {"id": transformation, "version": version})
    return None if found is None else str(found)


async def users(conn: Connection, transformation: UUID) -> list[User]:
    return await db.rows(conn, _Q["users"], {"id": transformation}, User)
