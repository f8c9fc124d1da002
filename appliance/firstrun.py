"""What a new installation needs before anyone can use it: the schema, a first source to send
events to, and a first admin with a one-time password (changed at first sign-in; there is
never a fixed default). `sluice run` does it at every start, the installer through `sluice
setup`; both print how to sign in and send a first event. The one-time password is also kept
in the data directory, readable by its owner only, until the web UI sees it changed: whoever
missed it on a busy console (or the installer's output) finds it there."""

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from appliance import options
from appliance.settings import Settings
from engine import migrate, specs
from engine.control import accounts, workspace
from engine.control.changes import Changes
from engine.db import connection

log = logging.getLogger(__name__)

FIRST_ADMIN = "admin@localhost"
RULE = "=" * 72


LOCAL_WAREHOUSE = "Local warehouse"


@dataclass(frozen=True)
class LocalWarehouse:
    """The embedded PostgreSQL's `warehouse` database (with `sluice run` and no database
    configured): its destination settings, the `psql` line that opens it, whether it is new."""

    settings: dict[str, str]
    psql: str
    new: bool


@dataclass(frozen=True)
class FirstRun:
    write_key: str | None  # of the source made now, if one was
    admin: tuple[str, str] | None  # (email, one-time password) of the admin made now, if one was
    local_warehouse: LocalWarehouse | None = None
    password_file: Path | None = None  # where the one-time password is kept, if one was made


def _keep(path: Path, email: str, password: str) -> Path:
    """Write the one-time password where only this user (and root) can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # (an earlier one, of a database since replaced)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(f"{password}\n# the one-time password of {email}; removed once it is changed\n")
    return path


async def prepare(
    url: str, by: str, password_file: Path, local: LocalWarehouse | None = None
) -> FirstRun:
    """Bring the schema up to date; on an empty workspace make a source, with nobody to sign
    in an admin (its password kept in `password_file`), and for a new local warehouse its
    destination, ready to be connected (`by` goes in the audit log)."""
    for done in await migrate.apply(url):
        log.info("applied migration %04d %s", done.version, done.name)
    async with connection(url) as conn:
        changes = Changes(conn, by)
        write_key = None
        if not (await workspace.export(conn)).sources:
            spec = specs.WorkspaceSpec(sources=[specs.SourceSpec(name="default")])
            made = await changes.apply(spec, action="source.create", target="default")
            write_key = made.new_write_keys.get("default")
        admin, kept = None, None
        if not await accounts.count(conn):
            password = secrets.token_urlsafe(12)
            user = await changes.create_user(FIRST_ADMIN, "admin", password)
            admin = (user.email, password)
            kept = _keep(password_file, user.email, password)
        if local is not None and local.new:
            config = {**local.settings, "syncFrequency": "5"}
            spec = specs.WorkspaceSpec(
                destinations=[specs.DestinationSpec(LOCAL_WAREHOUSE, "postgres", config)]
            )
            await changes.apply(spec, action="destination.create", target=LOCAL_WAREHOUSE)
    return FirstRun(write_key, admin, local, kept)


def password_notice(first: FirstRun) -> str | None:
    """The one-time password, if one was made, framed so that it stands out among log lines."""
    if first.admin is None:
        return None
    email, password = first.admin
    return "\n".join([
        RULE,
        f"Sign in to the web UI as {email} with this one-time password, then choose your own:",
        f"    {password}",
        f"(Kept until then in {first.password_file}, readable by its owner only.)",
        RULE,
    ])  # fmt: skip


def instructions(settings: Settings, first: FirstRun) -> str:
    """How to send a first event (and what was made to receive it)."""
    base = options.gateway_url(settings)
    lines = []
    if first.write_key:
        lines += [
            "A source named 'default' was created. Send it a test event with:\n"
            f"  curl -u '{first.write_key}:' -H 'Content-Type: application/json' "
            f'-d \'{{"userId":"u1","event":"Hello Sluice"}}\' {base}/v1/track'
        ]
    else:
        lines += [
            "Write keys: `sluice config export`. Send test traffic with:\n"
            f"  sluice generate-events --write-key <KEY> --url {base}"
        ]
    if first.local_warehouse is not None:
        lines += [
            f"A local warehouse is ready: connect a source to the '{LOCAL_WAREHOUSE}' "
            "destination and its events load every 5 minutes (or at once with Sync now);\n"
            f"  query them with SQL: {first.local_warehouse.psql}"
        ]
    return "\n".join(lines)
