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
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.rows import dict_row

from engine import workspace
from engine.errors import ConfigError
from engine.sql import Queries

_Q = Queries.beside(__file__, "backup.sql")
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


class Event(msgspec.Struct):
    source: str
    partition: int
    received_at: datetime
    message_id: str
    payload: str  # the JSON as stored


class Job(msgspec.Struct):
    destination: str
    source: str
    partition: int
    user_key: str
    received_at: datetime
    message_id: str
    event_type: str
    event_name: str | None
    request: str  # the JSON as stored
    events: int


class Pending(msgspec.Struct):
    events: list[Event]
    jobs: list[Job]


class Backup(msgspec.Struct):
    format: Literal["sluice-backup"]
    version: int
    made_at: datetime
    workspace: workspace.WorkspaceSpec
    users: list[User]
    api_tokens: list[Token]
    pending: Pending | None = None


async def make(conn: psycopg.AsyncConnection[Any], made_at: datetime, *, pending: bool) -> bytes:
    """The backup document, read in one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        backup = Backup(
            FORMAT, VERSION, made_at, await workspace.export(conn),
            await _rows(conn, "users", User), await _rows(conn, "tokens", Token),
            Pending(await _rows(conn, "unprocessed", Event), await _rows(conn, "unsettled", Job))
            if pending else None,
        )  # fmt: skip
    return msgspec.json.format(msgspec.json.encode(backup), indent=1)


async def _rows(conn: psycopg.AsyncConnection[Any], query: str, kind: type[Any]) -> list[Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_Q[query])
        return [msgspec.convert(row, kind) for row in await cur.fetchall()]


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


async def restore(conn: psycopg.AsyncConnection[Any], backup: Backup) -> Restored:
    """Everything in `backup` into this database, in one transaction."""
    async with conn.transaction():
        applied = await workspace.apply(conn, backup.workspace)
        for user in backup.users:
            await conn.execute(_Q["restore_user"], msgspec.structs.asdict(user))
        for token in backup.api_tokens:
            await conn.execute(_Q["restore_token"], msgspec.structs.asdict(token))
        events = jobs = 0
        if backup.pending is not None:
            async with conn.cursor() as cur:
                for event in backup.pending.events:
                    await cur.execute(_Q["restore_event"], msgspec.structs.asdict(event))
                    events += cur.rowcount
                for job in backup.pending.jobs:
                    await cur.execute(_Q["restore_job"], msgspec.structs.asdict(job))
                    jobs += cur.rowcount
            await conn.execute(_Q["wake"])
    return Restored(applied.changes, len(backup.users), len(backup.api_tokens), events, jobs)
