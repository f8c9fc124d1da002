"""What a new installation needs before anyone can use it: the schema, a first source to send
events to, and a first admin with a one-time password (changed at first sign-in; there is
never a fixed default). `sluice run` does it at every start, the installer through `sluice
setup`; both print how to sign in and send a first event."""

import logging
import secrets
from dataclasses import dataclass

from appliance import options
from appliance.settings import Settings
from engine import migrate, specs
from engine.control import accounts, workspace
from engine.control.changes import Changes
from engine.db import connection

log = logging.getLogger(__name__)

FIRST_ADMIN = "admin@localhost"


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


async def prepare(url: str, by: str, local: LocalWarehouse | None = None) -> FirstRun:
    """Bring the schema up to date; on an empty workspace make a source, with nobody to sign
    in an admin, and for a new local warehouse its destination, ready to be connected (`by`
    goes in the audit log)."""
    for done in await migrate.apply(url):
        log.info("applied migration %04d %s", done.version, done.name)
    async with connection(url) as conn:
        changes = Changes(conn, by)
        write_key = None
        if not (await workspace.export(conn)).sources:
            spec = specs.WorkspaceSpec(sources=[specs.SourceSpec(name="default")])
            made = await changes.apply(spec, action="source.create", target="default")
            write_key = made.new_write_keys.get("default")
        admin = None
        if not await accounts.count(conn):
            password = secrets.token_urlsafe(12)
            user = await changes.create_user(FIRST_ADMIN, "admin", password)
            admin = (user.email, password)
        if local is not None and local.new:
            config = {**local.settings, "syncFrequency": "5"}
            spec = specs.WorkspaceSpec(
                destinations=[specs.DestinationSpec(LOCAL_WAREHOUSE, "postgres", config)]
            )
            await changes.apply(spec, action="destination.create", target=LOCAL_WAREHOUSE)
    return FirstRun(write_key, admin, local)


def instructions(settings: Settings, first: FirstRun) -> str:
    """How to sign in (with the one-time password, if one was made) and send a first event."""
    base = options.gateway_url(settings)
    lines = []
    if first.admin:
        lines += [
            f"Sign in to the web UI as {first.admin[0]} with this one-time password, then "
            f"choose your own:\n  {first.admin[1]}"
        ]
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
