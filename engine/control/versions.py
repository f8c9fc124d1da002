"""A transformation's history as the control plane shows it: its versions (saving changed code
appends one; connections run the newest) and the connections that run it."""

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


async def users(conn: Connection, transformation: UUID) -> list[User]:
    return await db.rows(conn, _Q["users"], {"id": transformation}, User)
