"""A transformation's history as the control plane shows it: its versions (saving changed code
appends one; connections run the newest) and the connections that run it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

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


async def overview(conn: psycopg.AsyncConnection[Any]) -> list[Summary]:
    async with conn.cursor(row_factory=class_row(Summary)) as cur:
        await cur.execute(_Q["overview"])
        return await cur.fetchall()


async def history(
    conn: psycopg.AsyncConnection[Any], transformation: UUID, limit: int = 50
) -> list[Version]:
    """The newest versions first."""
    async with conn.cursor(row_factory=class_row(Version)) as cur:
        await cur.execute(_Q["history"], {"id": transformation, "limit": limit})
        return await cur.fetchall()


async def users(conn: psycopg.AsyncConnection[Any], transformation: UUID) -> list[User]:
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(_Q["users"], {"id": transformation})
        return await cur.fetchall()
