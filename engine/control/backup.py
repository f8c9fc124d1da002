"""Backups of what a Sluice installation is configured with — the workspace (sources with their
write keys, destinations with their secrets and alert rules, transformations, connections), the
people who sign in (with their password hashes), the API tokens (their hashes) and the SMTP
server alerts are mailed through — and, optionally, what it has not delivered yet: events not
processed and jobs not settled.

A backup is one JSON document. It holds secrets, so it is written readable by its owner only.
Restoring applies the workspace by name like `sluice config apply`, adds or updates the users
and tokens, sets the SMTP server (when the backup has one), and queues the pending events and
jobs again, in their order, for the destinations of the same names.
"""

from datetime import datetime
from typing import Literal

import msgspec

from engine import db, specs
from engine.control import accounts, settings, tokens, workspace
from engine.db import Connection
from engine.errors import ConfigError
from engine.store import ingest_log, jobs

FORMAT: Literal["sluice-backup"] = "sluice-backup"
VERSION = 1


class Pending(msgspec.Struct):
    events: list[ingest_log.Unprocessed]
    jobs: list[jobs.Unsettled]


class Backup(msgspec.Struct):
    format: Literal["sluice-backup"]
    version: int
    made_at: datetime
    workspace: specs.WorkspaceSpec
    users: list[accounts.Kept]
    api_tokens: list[tokens.Kept]
    pending: Pending | None = None
    smtp: settings.Smtp | None = None  # (backups made before there was one have none)


async def make(conn: Connection, made_at: datetime, *, pending: bool) -> bytes:
    """The backup document, read in one snapshot."""
    async with conn.transaction():
        await db.one_snapshot(conn)
        backup = Backup(
            FORMAT, VERSION, made_at, await workspace.export(conn),
            await accounts.kept(conn), await tokens.kept(conn),
            Pending(await ingest_log.unprocessed(conn), await jobs.unsettled(conn))
            if pending else None, await settings.smtp(conn),
        )  # fmt: skip
    return msgspec.json.format(msgspec.json.encode(backup), indent=1)


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
            await accounts.restore(conn, user)
        for token in backup.api_tokens:
            await tokens.restore(conn, token)
        if backup.smtp is not None:
            await settings.set_smtp(conn, backup.smtp)
        events = queued = 0
        if backup.pending is not None:
            for event in backup.pending.events:
                events += await ingest_log.restore(conn, event)
            for job in backup.pending.jobs:
                queued += await jobs.restore(conn, job)
            await ingest_log.wake(conn)
            await jobs.wake(conn)
    return Restored(applied.changes, len(backup.users), len(backup.api_tokens), events, queued)
