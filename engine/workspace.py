"""The workspace configuration store: sources, destinations, transformations, connections.

`parse` turns a config file into validated specs; `apply` upserts them by name in one
transaction (entries absent from the file are left alone); `export` writes the same shape back.
"""

import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from uuid import UUID

import msgspec
import psycopg
import yaml
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from engine import alerts
from engine.alerts import Conditions
from engine.destinations.base import BadSettings
from engine.destinations.catalog import CATALOG, IMPLEMENTED
from engine.errors import ConfigError
from engine.pipeline.policy import DeliveryPolicy
from engine.sql import Queries
from engine.transformations import runtime as transformations
from engine.transformations.process import BadCode

_Q = Queries.beside(__file__, "workspace.sql")
_KEY_ALPHABET = string.ascii_letters + string.digits
_Spec = TypeVar("_Spec")


class SourceSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    write_key: str | None = None
    enabled: bool = True
    rate_limit: int | None = None


class DestinationSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    type: str
    config: dict[str, Any] = {}
    enabled: bool = True
    delivery: DeliveryPolicy = msgspec.field(default_factory=DeliveryPolicy)
    alerts: Conditions | None = None  # none: no alert rule


class TransformationSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    code: str


class ConnectionSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    source: str
    destination: str
    transformation: str | None = None
    enabled: bool = True


class WorkspaceSpec(msgspec.Struct, omit_defaults=True):
    sources: list[SourceSpec] = []
    destinations: list[DestinationSpec] = []
    transformations: list[TransformationSpec] = []
    connections: list[ConnectionSpec] = []


Action = Literal["created", "updated", "unchanged"]


@dataclass
class ApplyReport:
    changes: list[tuple[str, str, Action]] = field(default_factory=list)
    # write keys generated for new sources, so the person applying the file can use them
    new_write_keys: dict[str, str] = field(default_factory=dict)

    def note(self, kind: str, name: str, row: tuple[Any, ...] | None) -> None:
        action: Action = "unchanged" if row is None else ("created" if row[0] else "updated")
        self.changes.append((kind, name, action))


def new_write_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


def parse(text: str) -> WorkspaceSpec:
    """Validate a YAML or JSON workspace file; errors name the entry at fault."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("file", f"not valid YAML or JSON: {exc}") from exc
    if data is None:
        return WorkspaceSpec()
    if not isinstance(data, dict):
        raise ConfigError("file", "the top level must be a mapping of sources, destinations, …")
    unknown = set(data) - set(WorkspaceSpec.__struct_fields__)
    if unknown:
        raise ConfigError("file", f"unknown section(s): {', '.join(sorted(map(str, unknown)))}")
    spec = WorkspaceSpec(
        sources=_entries(data, "sources", SourceSpec),
        destinations=_entries(data, "destinations", DestinationSpec),
        transformations=_entries(data, "transformations", TransformationSpec),
        connections=_entries(data, "connections", ConnectionSpec),
    )
    _check(spec)
    return spec


def _entries(data: dict[str, Any], section: str, spec: type[_Spec]) -> list[_Spec]:
    raw = data.get(section) or []
    if not isinstance(raw, list):
        raise ConfigError(section, "must be a list")
    entries = []
    for i, item in enumerate(raw):
        label = _label(section, i, item)
        try:
            entries.append(msgspec.convert(item, spec))
        except msgspec.ValidationError as exc:
            raise ConfigError(label, str(exc)) from None
    return entries


def _label(section: str, index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if section == "connections" and isinstance(item, dict):
        name = f"{item.get('source')} → {item.get('destination')}"
    return f"{section}[{index}]" + (f" ({name})" if name else "")


def _check(spec: WorkspaceSpec) -> None:
    for section in ("sources", "destinations", "transformations"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(spec, section)):
            label = f"{section}[{i}] ({entry.name})"
            if not entry.name.strip():
                raise ConfigError(f"{section}[{i}]", "name must not be empty")
            if entry.name in seen:
                raise ConfigError(label, "the name is used twice in this file")
            seen.add(entry.name)
    for i, src in enumerate(spec.sources):
        label = f"sources[{i}] ({src.name})"
        if src.write_key is not None and (len(src.write_key) < 8 or ":" in src.write_key):
            raise ConfigError(label, "write_key must be at least 8 characters, without ':'")
        if src.rate_limit is not None and src.rate_limit <= 0:
            raise ConfigError(label, "rate_limit must be a positive number of events per second")
    for i, dest in enumerate(spec.destinations):
        _check_destination(f"destinations[{i}] ({dest.name})", dest)
    for i, tr in enumerate(spec.transformations):
        if not tr.code.strip():
            raise ConfigError(f"transformations[{i}] ({tr.name})", "code must not be empty")


def _check_destination(label: str, dest: DestinationSpec) -> None:
    kind = CATALOG.get(dest.type)
    if kind is None:
        raise ConfigError(
            label, f"unknown type {dest.type!r}; known types: {', '.join(sorted(CATALOG))}"
        )
    missing = [key for key in kind.required if dest.config.get(key) in (None, "")]
    if missing:
        raise ConfigError(label, f"{kind.title} needs config {', '.join(missing)}")
    plugin = IMPLEMENTED.get(dest.type)
    if plugin is not None:
        try:
            plugin.parse_settings(dest.config)
        except BadSettings as exc:
            raise ConfigError(label, str(exc)) from None
    if dest.alerts is not None:
        try:
            dest.alerts.check()
        except ConfigError as exc:
            raise ConfigError(label, f"alerts: {exc.message}") from None


async def apply(conn: psycopg.AsyncConnection[Any], spec: WorkspaceSpec) -> ApplyReport:
    """Upsert every entry by name in one transaction and wake the processes that cache it.
    ConfigError names the entry at fault when one is invalid."""
    _check(spec)
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
            cur = await conn.execute(
                _Q["upsert_destination"],
                {
                    "name": dest.name,
                    "type": dest.type,
                    "config": Jsonb(dest.config),
                    "enabled": dest.enabled,
                    "delivery": Jsonb(msgspec.to_builtins(dest.delivery)),
                },
            )
            row = await cur.fetchone()
            if await _apply_alerts(conn, dest) and row is None:
                row = (False,)  # only its alert rule changed
            report.note("destination", dest.name, row)
        for tr in spec.transformations:
            await _apply_transformation(conn, tr, report)
        for i, con in enumerate(spec.connections):
            await _apply_connection(conn, i, con, report)
        await conn.execute(_Q["notify_changed"])
    return report


async def _apply_source(
    conn: psycopg.AsyncConnection[Any], src: SourceSpec, report: ApplyReport
) -> None:
    params = {
        "name": src.name,
        "write_key": src.write_key,
        "new_key": new_write_key(),
        "enabled": src.enabled,
        "rate_limit": src.rate_limit,
    }
    try:
        async with conn.transaction():
            cur = await conn.execute(_Q["upsert_source"], params)
    except psycopg.errors.UniqueViolation:
        raise ConfigError(
            f"source {src.name}", "its write_key is already used by another source"
        ) from None
    row = await cur.fetchone()
    report.note("source", src.name, row)
    if row is not None and row[0] and src.write_key is None:
        report.new_write_keys[src.name] = row[1]


async def _apply_alerts(conn: psycopg.AsyncConnection[Any], dest: DestinationSpec) -> bool:
    """The destination's alert rule as the spec says (none: removed); whether it changed."""
    dest_id = await _id_of(conn, "destination", dest.name, f"destination {dest.name}")
    if dest.alerts is None:
        return await alerts.remove(conn, dest_id)
    conditions = msgspec.structs.asdict(dest.alerts)
    return await alerts.save(conn, alerts.Rule(destination_id=dest_id, **conditions))


async def _apply_transformation(
    conn: psycopg.AsyncConnection[Any], tr: TransformationSpec, report: ApplyReport
) -> None:
    cur = await conn.execute(_Q["upsert_transformation"], {"name": tr.name})
    row = await cur.fetchone()
    assert row is not None
    version = await conn.execute(_Q["add_transformation_version"], {"id": row[0], "code": tr.code})
    changed = await version.fetchone() is not None
    report.note("transformation", tr.name, (row[1],) if changed else None)


async def _apply_connection(
    conn: psycopg.AsyncConnection[Any], index: int, con: ConnectionSpec, report: ApplyReport
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
    cur = await conn.execute(_Q["upsert_connection"], {**ids, "enabled": con.enabled})
    report.note("connection", f"{con.source} → {con.destination}", await cur.fetchone())


async def _id_of(conn: psycopg.AsyncConnection[Any], kind: str, name: str, label: str) -> Any:
    cur = await conn.execute(_Q[f"{kind}_id"], {"name": name})
    row = await cur.fetchone()
    if row is None:
        raise ConfigError(label, f"unknown {kind} {name!r}")
    return row[0]


async def export(conn: psycopg.AsyncConnection[Any]) -> WorkspaceSpec:
    async def rows(query: str) -> list[dict[str, Any]]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_Q[query], {"id": None})
            return await cur.fetchall()

    return WorkspaceSpec(
        sources=msgspec.convert(await rows("export_sources"), list[SourceSpec]),
        destinations=msgspec.convert(await rows("export_destinations"), list[DestinationSpec]),
        transformations=msgspec.convert(
            await rows("export_transformations"), list[TransformationSpec]
        ),
        connections=msgspec.convert(await rows("export_connections"), list[ConnectionSpec]),
    )


_ENTRIES: dict[str, type[Any]] = {
    "source": SourceSpec,
    "destination": DestinationSpec,
    "transformation": TransformationSpec,
    "connection": ConnectionSpec,
}


async def entry(
    conn: psycopg.AsyncConnection[Any],
    kind: Literal["source", "destination", "transformation", "connection"],
    id: UUID,
) -> Any:
    """One entry as `export` writes it (a SourceSpec, DestinationSpec, TransformationSpec with
    its newest code, or ConnectionSpec), found by id; None when there is none. Change it and
    `apply` it to edit it."""
    query = f"export_{kind}s" if kind in ("destination", "transformation") else f"{kind}_by_id"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_Q[query], {"id": id})
        row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, _ENTRIES[kind])


async def switch(
    conn: psycopg.AsyncConnection[Any],
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
    conn: psycopg.AsyncConnection[Any],
    kind: Literal["source", "destination", "transformation"],
    name: str,
) -> bool:
    """Delete an entry by name (its connections go with it); False when there is none.

    A deleted destination's waiting jobs are settled as `discarded`. A transformation that
    connections use is not deleted (ConfigError naming them): events would silently go out
    untransformed."""
    async with conn.transaction():
        if kind == "transformation":
            cur = await conn.execute(_Q["transformation_users"], {"name": name})
            users = [row[0] for row in await cur.fetchall()]
            if users:
                raise ConfigError(
                    f"transformation {name}", f"connections use it: {', '.join(users)}"
                )
        cur = await conn.execute(_Q[f"delete_{kind}"], {"name": name})
        row = await cur.fetchone()
        if row is None:
            return False
        if kind == "destination":
            await conn.execute(_Q["discard_jobs"], {"id": row[0]})
        await conn.execute(_Q["notify_changed"])
    return True


async def disconnect(conn: psycopg.AsyncConnection[Any], source: str, destination: str) -> bool:
    """Delete the connection of `source` to `destination`; False when there is none. Jobs it
    made already are still delivered."""
    async with conn.transaction():
        cur = await conn.execute(
            _Q["delete_connection"], {"source": source, "destination": destination}
        )
        gone = await cur.fetchone() is not None
        if gone:
            await conn.execute(_Q["notify_changed"])
    return gone


def dump(spec: WorkspaceSpec, fmt: Literal["yaml", "json"]) -> str:
    plain = msgspec.to_builtins(spec)
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(plain)).decode() + "\n"
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
