"""The audit log: who changed what, when. Appended in the same transaction as the change, so
the log never claims a change that did not happen, nor misses one that did. Details never hold
secrets: callers pass names and settings keys, not values."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from engine import db
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "audit.sql")


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


async def record(
    conn: Connection,
    actor: str,
    action: str,
    target: str | None = None,
    **detail: Any,
) -> None:
    params = {"actor": actor, "action": action, "target": target, "detail": Jsonb(detail)}
    await conn.execute(_Q["record"], params)


async def recent(conn: Connection, *, limit: int = 100, before: int | None = None) -> list[Entry]:
    """Newest first; `before` (an entry id) pages back."""
    return await db.rows(conn, _Q["recent"], {"limit": limit, "before": before}, Entry)
