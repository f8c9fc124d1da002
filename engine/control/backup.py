"""Backups of what a Sluice installation is configured with — the workspace (sources with their
write keys, destinations with their secrets and alert rules, transformations, connections), the
people who sign in (with their password hashes) and the API tokens (their hashes) — and,
optionally, what it has not delivered yet: events not processed and jobs not settled.

A backup is one JSON document. It holds secrets, so it is written readable by its owner only.
Restoring applies the workspace by name like `sluice config apply`, adds or updates the users
and tokens, and queues the pending events and jobs again, in their order, for the destinations
of the same names.
"""

from datetime import datetime
from typing import Literal, TypeVar

import msgspec

from engine import db, specs
from engine.control import workspace
from engine.db import Connection
from engine.errors import ConfigError
from engine.sql import Queries
from engine.store import ingest_log, jobs

_Q = Queries.beside(__file__, "backup.sql")
T = TypeVar("T")
FORMAT: Literal["sluice-backup"] = "sluice-backup"
VERSION = 1


class User(msgspec.Struct):
    email: str
    role: str
    password_hash: str
    must_change_password: bool
    disabled: bool


class Token(msgspec.Struct):
    name: str
    role: str
    token_hash: str  # hex of the SHA-256 kept for it
    created_by: str
    created_at: datetime
    expires_at: datetime | None


class Pending(msgspec.Struct):
    events: list[ingest_log.Unprocessed]
    jobs: list[jobs.Unsettled]


class Backup(msgspec.Struct):
    format: Literal["sluice-backup"]
    version: int
    made_at: datetime
    workspace: specs.WorkspaceSpec
    users: list[User]
    api_tokens: list[Token]
    pending: Pending | None = None


async def make(conn: Connection, made_at: datetime, *, pending: bool) -> bytes:
    """The backup document, read in one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        backup = Backup(
            FORMAT, VERSION, made_at, await workspace.export(conn),
            await _rows(conn, "users", User), await _rows(conn, "tokens", Token),
            Pending(await ingest_log.unprocessed(conn), await jobs.unsettled(conn))
            if pending else None,
        )  # fmt: skip
    return msgspec.json.format(msgspec.json.encode(backup), indent=1)


async def _rows(conn: Connection, query: str, kind: type[T]) -> list[T]:
    return await db.rows(conn, _Q[query], None, kind)


def read(document: bytes) -> Backup:
    """The backup in `document`; ConfigError when it is not one this version can restore."""
    try:
        found = msgspec.json.decode(document)
    except msgspec.DecodeError as exc:
        raise ConfigError("backup", f"not a JSON document: {exc}") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise ConfigError("backup", "not a Sluice backup (made by `sluice backup`)")
    if found.get("version") != VERSION:
        raise ConfigError(
            "backup", f"made by a Sluice whose backups are version {found.get('version')}; "
            f"this one restores version {VERSION}",
        )  # fmt: skip
    try:
        return msgspec.convert(found, Backup)
    except msgspec.ValidationError as exc:
        raise ConfigError("backup", f"damaged: {exc}") from None


class Restored(msgspec.Struct):
    changes: list[tuple[str, str, workspace.Action]]
    users: int
    api_tokens: int
    events: int
    jobs: int


async def restore(conn: Connection, backup: Backup) -> Restored:
    """Everything in `backup` into this database, in one transaction."""
    async with conn.transaction():
        applied = await workspace.apply(conn, backup.workspace)
        for user in backup.users:
            await conn.execute(_Q["restore_user"], msgspec.structs.asdict(user))
        for token in backup.api_tokens:
            await conn.execute(_Q["restore_token"], msgspec.structs.asdict(token))
        events = queued = 0
        if backup.pending is not None:
            for event in backup.pending.events:
                events += await ingest_log.restore(conn, event)
            for job in backup.pending.jobs:
                queued += await jobs.restore(conn, job)
            await ingest_log.wake(conn)
            await jobs.wake(conn)
    return Restored(applied.changes, len(backup.users), len(backup.api_tokens), events, queued)
