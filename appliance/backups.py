"""`sluice backup FILE [--pending]` and `sluice restore FILE` (engine.control.backup's services)."""

import argparse
import os
from datetime import UTC, datetime

from engine.control import backup
from engine.control.changes import CLI, Changes
from engine.db import connection


async def backup_command(args: argparse.Namespace, url: str) -> None:
    async with connection(url) as conn:
        document = await backup.make(conn, datetime.now(UTC), pending=args.pending)
        await Changes(conn, CLI).record("backup", str(args.file), pending=args.pending)
    # Secrets inside: readable by whoever made it, and no one else, from its first byte.
    descriptor = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(document)
    print(f"wrote {args.file} ({len(document):,} bytes; it holds secrets: keep it safe)")


async def restore_command(args: argparse.Namespace, url: str) -> None:
    found = backup.read(args.file.read_bytes())
    async with connection(url) as conn:
        done = await backup.restore(conn, found)
        made_at = found.made_at.isoformat()
        await Changes(conn, CLI).record("restore", str(args.file), made_at=made_at)
    for kind, name, action in done.changes:
        print(f"{kind:<15} {name:<30} {action}")
    print(f"users: {done.users}, API tokens: {done.api_tokens}, pending events: {done.events}, "
          f"pending jobs: {done.jobs}")  # fmt: skip
