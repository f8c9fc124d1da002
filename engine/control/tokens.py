"""Bearer tokens for the config API, made by admins and shown once; each carries a role, like
a person's, and may expire. Only a SHA-256 of a token is stored."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from engine import db
from engine.control.accounts import ROLES, Role
from engine.db import Connection
from engine.errors import AccountError
from engine.sql import Queries

_Q = Queries.beside(__file__, "tokens.sql")
PREFIX = "slc_"  # recognisable in a leaked log or a secret scanner


@dataclass(frozen=True)
class Token:
    id: UUID
    name: str
    role: Role
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None  # None: until revoked
    must_change_password = False  # (as a principal: tokens have no password)

    @property
    def email(self) -> str:
        """How the audit log names what this token did."""
        return f"token {self.name}"

    def may(self, needed: Role) -> bool:
        return ROLES.index(self.role) <= ROLES.index(needed)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create(
    conn: Connection,
    name: str,
    role: str,
    created_by: str,
    lifetime: timedelta | None = None,
) -> tuple[str, Token]:
    """A new token valid for `lifetime` (None: until revoked): the secret (shown once, never
    stored) and its record."""
    label = name.strip()
    if not label or len(label) > 100:
        raise AccountError("a token needs a name (up to 100 characters)")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if lifetime is not None and lifetime <= timedelta(0):
        raise AccountError("a token's lifetime must be positive")
    secret = PREFIX + secrets.token_urlsafe(32)
    params = {"name": label, "role": role, "token_hash": _digest(secret),
              "created_by": created_by, "lifetime": lifetime}  # fmt: skip
    token = await db.row(conn, _Q["create"], params, Token)
    if token is None:
        raise AccountError(f"there is a token called {label!r} already")
    return secret, token


async def verify(conn: Connection, secret: str) -> Token | None:
    if not secret.startswith(PREFIX):
        return None
    return await db.row(conn, _Q["verify"], {"token_hash": _digest(secret)}, Token)


async def everyone(conn: Connection) -> list[Token]:
    return await db.rows(conn, _Q["all"], None, Token)


async def revoke(conn: Connection, token_id: UUID) -> str | None:
    """Revoke a token (it stops working at once); its name, or None if there was none."""
    name = await db.value(conn, _Q["revoke"], {"id": token_id})
    return None if name is None else str(name)


class Kept(msgspec.Struct):
    """A token as a backup keeps it: with the hash of its secret (so it keeps working)."""

    name: str
    role: str
    token_hash: str  # hex of the SHA-256 kept for it
    created_by: str
    created_at: datetime
    expires_at: datetime | None


async def kept(conn: Connection) -> list[Kept]:
    return await db.rows(conn, _Q["kept"], None, Kept)


async def restore(conn: Connection, token: Kept) -> None:
    """Add or update a token as a backup kept it."""
    await conn.execute(_Q["restore"], msgspec.structs.asdict(token))
