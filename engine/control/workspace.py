"""The workspace store: sources, destinations, transformations, connections in the database.

`apply` upserts entries (`engine.specs`) by name in one transaction (entries absent from the
file are left alone); `export` reads the same shape back; `entry`, `switch`, `delete` and
`disconnect` change one entry. Nothing here records who did it: `engine.control.changes`
applies and audits together, for the pages, the API and the CLI.
"""

from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb

from engine import db
from engine.control import alerts
from engine.db import Connection
from engine.errors import ConfigError, Conflict
from engine.specs import (
    ConnectionSpec,
    DestinationSpec,
    SourceSpec,
    TransformationSpec,
    WorkspaceSpec,
    check,
    new_write_key,
)
from engine.sql import Queries
from engine.store import jobs
from engine.transformations import runtime as transformations
from engine.transformations.process import BadCode

_Q = Queries.beside(__file__, "workspace.sql")


Action = Literal["created", "updated", "unchanged"]


@dataclass
class ApplyReport:
    changes: list[tuple[str, str, Action]] = field(default_factory=list)
    # write keys generated for new sources, so the person applying the file can use them
    new_write_keys: dict[str, str] = field(default_factory=dict)

    def note(self, kind: str, name: str, created: bool | None) -> None:
        """What an upsert did: `created` true or false, or None when nothing changed."""
        action: Action = "unchanged" if created is None else ("created" if created else "updated")
        self.changes.append((kind, name, action))


@dataclass(frozen=True)
class _Upserted:
    created: bool
    write_key: str | None = None  # (a source's)
    id: UUID | None = None  # (a transformation's)


async def apply(conn: Connection, spec: WorkspaceSpec, author: str | None = None) -> ApplyReport:
    """Upsert every entry by name in one transaction and wake the processes that cache it;
    new transformation versions are saved by `author` (as the audit log names people).
    ConfigError names the entry at fault when one is invalid."""
    check(spec)
    for i, tr in enumerate(spec.transformations):
        try:
            await transformations.check(tr.code)
        except BadCode as exc:
            raise ConfigError(f"transformations[{i}] ({tr.name})", str(exc)) from None
    report = ApplyReport()
    async with conn.transaction():
        for src in spec.sources:
            await _apply_source(conn, src, report)
        for dest in spec.destinations:
            params = {"name": dest.name, "type": dest.type, "config": Jsonb(dest.config),
                      "enabled": dest.enabled,
                      "delivery": Jsonb(msgspec.to_builtins(dest.delivery))}  # fmt: skip
            created = await db.value(conn, _Q["upsert_destination"], params)
            if await _apply_alerts(conn, dest) and created is None:
                created = False  # only its alert rule changed
            report.note("destination", dest.name, created)
        for tr in spec.transformations:
            await _apply_transformation(conn, tr, report, author)
        for i, con in enumerate(spec.connections):
            await _apply_connection(conn, i, con, report)
        await conn.execute(_Q["notify_changed"])
    return report


async def _apply_source(conn: Connection, src: SourceSpec, report: ApplyReport) -> None:
    params = {
        "name": src.name,
        "write_key": src.write_key,
        "new_key": new_write_key(),
        "enabled": src.enabled,
        "rate_limit": src.rate_limit,
    }
    try:
        with db.translated():
            async with conn.transaction():
                upserted = await db.row(conn, _Q["upsert_source"], params, _Upserted)
    except Conflict:
        raise ConfigError(
            f"source {src.name}", "its write_key is already used by another source"
        ) from None
    report.note("source", src.name, upserted.created if upserted else None)
    if upserted is not None and upserted.created and src.write_key is None:
        assert upserted.write_key is not None
        report.new_write_keys[src.name] = upserted.write_key


async def _apply_alerts(conn: Connection, dest: DestinationSpec) -> bool:
    """The destination's alert rule as the spec says (none: removed); whether it changed."""
    dest_id = await _id_of(conn, "destination", dest.name, f"destination {dest.name}")
    if dest.alerts is None:
        return await alerts.remove(conn, dest_id)
    conditions = msgspec.structs.asdict(dest.alerts)
    return await alerts.save(conn, alerts.Rule(destination_id=dest_id, **conditions))


async def _apply_transformation(
    conn: Connection, tr: TransformationSpec, report: ApplyReport, author: str | None
) -> None:
    upserted = await db.row(conn, _Q["upsert_transformation"], {"name": tr.name}, _Upserted)
    assert upserted is not None
    params = {"id": upserted.id, "code": tr.code, "author": author}
    versioned = await db.value(conn, _Q["add_transformation_version"], params) is not None
    report.note("transformation", tr.name, upserted.created if versioned else None)


async def _apply_connection(
    conn: Connection, index: int, con: ConnectionSpec, report: ApplyReport
) -> None:
    label = f"connections[{index}] ({con.source} → {con.destination})"
    ids = {
        "source_id": await _id_of(conn, "source", con.source, label),
        "destination_id": await _id_of(conn, "destination", con.destination, label),
        "transformation_id": (
            await _id_of(conn, "transformation", con.transformation, label)
            if con.transformation
            else None
        ),
    }
    created = await db.value(conn, _Q["upsert_connection"], {**ids, "enabled": con.enabled})
    report.note("connection", f"{con.source} → {con.destination}", created)


async def id_of(
    conn: Connection, kind: Literal["source", "destination", "transformation"], name: str
) -> UUID | None:
    """The id of the entry of this name; None when there is none."""
    found = await db.value(conn, _Q[f"{kind}_id"], {"name": name})
    return None if found is None else UUID(str(found))


async def _id_of(conn: Connection, kind: Any, name: str, label: str) -> UUID:
    found = await id_of(conn, kind, name)
    if found is None:
        raise ConfigError(label, f"unknown {kind} {name!r}")
    return found


async def export(conn: Connection) -> WorkspaceSpec:
    every = {"id": None}
    return WorkspaceSpec(
        sources=await db.rows(conn, _Q["export_sources"], every, SourceSpec),
        destinations=await db.rows(conn, _Q["export_destinations"], every, DestinationSpec),
        transformations=await db.rows(
            conn, _Q["export_transformations"], every, TransformationSpec
        ),
        connections=await db.rows(conn, _Q["export_connections"], every, ConnectionSpec),
    )


_ENTRIES: dict[str, type[Any]] = {
    "source": SourceSpec,
    "destination": DestinationSpec,
    "transformation": TransformationSpec,
    "connection": ConnectionSpec,
}


async def entry(
    conn: Connection,
    kind: Literal["source", "destination", "transformation", "connection"],
    id: UUID,
) -> Any:
    """One entry as `export` writes it (a SourceSpec, DestinationSpec, TransformationSpec with
    its newest code, or ConnectionSpec), found by id; None when there is none. Change it and
    `apply` it to edit it."""
    query = f"export_{kind}s" if kind in ("destination", "transformation") else f"{kind}_by_id"
    return await db.row(conn, _Q[query], {"id": id}, _ENTRIES[kind])


async def switch(
    conn: Connection,
    kind: Literal["source", "destination", "connection"],
    id: UUID,
    enabled: bool,
) -> str | None:
    """Switch an entry on or off; returns its name (None when there is no such entry)."""
    spec = await entry(conn, kind, id)
    if spec is None:
        return None
    changed = msgspec.structs.replace(spec, enabled=enabled)
    await apply(conn, WorkspaceSpec(**{f"{kind}s": [changed]}))
    return f"{spec.source} → {spec.destination}" if kind == "connection" else str(spec.name)


async def delete(
    conn: Connection,
    kind: Literal["source", "destination", "transformation"],
    name: str,
) -> bool:
    """Delete an entry by name (its connections go with it); False when there is none.

    A deleted destination's waiting jobs are settled as `discarded`. A transformation that
    connections use is not deleted (ConfigError naming them): events would silently go out
    untransformed."""
    async with conn.transaction():
        if kind == "transformation":
            users = await db.column(conn, _Q["transformation_users"], {"name": name})
            if users:
                raise ConfigError(
                    f"transformation {name}", f"connections use it: {', '.join(users)}"
                )
        deleted = await db.value(conn, _Q[f"delete_{kind}"], {"name": name})
        if deleted is None:
            return False
        if kind == "destination":
            await jobs.discard_all(conn, deleted)
        await conn.execute(_Q["notify_changed"])
    return True


async def disconnect(conn: Connection, source: str, destination: str) -> bool:
    """Delete the connection of `source` to `destination`; False when there is none. Jobs it
    made already are still delivered."""
    async with conn.transaction():
        params = {"source": source, "destination": destination}
        gone = await db.value(conn, _Q["delete_connection"], params) is not None
        if gone:
            await conn.execute(_Q["notify_changed"])
    return gone
