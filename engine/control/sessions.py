"""Control-plane sessions: a random token in an HttpOnly cookie, its SHA-256 in the database.

A session ends after `IDLE` without a request, after `LIFETIME` in any case, at sign-out, and
when its user's password changes (everywhere but the browser that changed it) or the account
is disabled.
"""

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from engine import db
from engine.control.accounts import User
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "sessions.sql")

IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def start(conn: Connection, user: User) -> str:
    """A new session for `user`; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        _Q["create"], {"token_hash": _digest(token), "user_id": user.id, "idle": IDLE}
    )
    return token


async def user(conn: Connection, token: str, *, touch: bool = True) -> User | None:
    """The signed-in user of a current session, else None. A request the user made (`touch`)
    keeps the session from going idle; one a page made by itself (a refresh) does not."""
    params = {"token_hash": _digest(token), "idle": IDLE, "lifetime": LIFETIME, "touch": touch}
    return await db.row(conn, _Q["user"], params, User)


async def end(conn: Connection, token: str) -> None:
    await conn.execute(_Q["end"], {"token_hash": _digest(token)})


async def end_others(conn: Connection, user_id: UUID, keep: str | None = None) -> None:
    """End every session of the user but `keep` (all of them when it is None)."""
    keep_hash = _digest(keep) if keep is not None else None
    await conn.execute(_Q["end_all"], {"user_id": user_id, "keep": keep_hash})


async def expire(conn: Connection) -> None:
    await conn.execute(_Q["expire"])
