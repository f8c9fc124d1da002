"""The warehouse destinations as the control plane shows them (the UI's warehouse page,
`sluice warehouse status`): their loads, their schema, what waits to be loaded; and "Sync
now", which the worker's load stage answers."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from engine.control import workspace
from engine.db import Connection
from engine.destinations.base import BadSettings
from engine.destinations.catalog import TYPES
from engine.errors import ConfigError, NoSuchEntry
from engine.specs import DestinationSpec
from engine.warehouses import uploads
from engine.warehouses.settings import WarehouseSettings


@dataclass(frozen=True)
class Warehouse:
    id: UUID
    name: str
    type: str
    enabled: bool
    sync_minutes: float | None  # None: the settings are broken (the page says why elsewhere)
    staged: uploads.Staged
    loads: list[uploads.Upload]  # the latest first
    schema: list[uploads.Table]
    discards: int
    sync_requested: datetime | None

    @property
    def lag_seconds(self) -> float | None:
        """How long the oldest event staged and not loaded has waited."""
        oldest = self.staged.oldest_event_at
        return None if oldest is None else (datetime.now(UTC) - oldest).total_seconds()


def is_warehouse(spec: DestinationSpec) -> bool:
    kind = TYPES.get(spec.type)
    return kind is not None and kind.warehouse is not None


async def every(conn: Connection) -> list[Warehouse]:
    """Every warehouse destination, by name."""
    specs = [d for d in (await workspace.export(conn)).destinations if is_warehouse(d)]
    return [await _shown(conn, spec) for spec in sorted(specs, key=lambda d: d.name)]


async def named(conn: Connection, name: str) -> Warehouse:
    spec = await _spec(conn, name)
    return await _shown(conn, spec)


async def request_sync(conn: Connection, name: str) -> UUID:
    """Ask for a load of what is staged for this warehouse now; its id."""
    spec = await _spec(conn, name)
    found = await workspace.id_of(conn, "destination", spec.name)
    assert found is not None
    await uploads.request_sync(conn, found)
    return found


async def retry(conn: Connection, name: str, upload: int) -> None:
    """A failed load of this warehouse tried again now (its worker hears of it at commit)."""
    destination = await request_sync(conn, name)
    if not await uploads.retry_now(conn, destination, upload):
        raise NoSuchEntry(f"{name} has no failed load #{upload}")


async def sync_answered(conn: Connection, destination: UUID) -> bool:
    return await uploads.sync_requested(conn, destination) is None


async def _spec(conn: Connection, name: str) -> DestinationSpec:
    found = next((d for d in (await workspace.export(conn)).destinations if d.name == name), None)
    if found is None:
        raise NoSuchEntry(f"there is no destination {name}")
    if not is_warehouse(found):
        raise ConfigError(name, f"is a {found.type} destination, not a warehouse")
    return found


async def _shown(conn: Connection, spec: DestinationSpec) -> Warehouse:
    found = await workspace.id_of(conn, "destination", spec.name)
    assert found is not None
    kind = TYPES[spec.type]
    try:
        settings: WarehouseSettings = kind.parse_settings(spec.config)
        minutes: float | None = settings.sync_minutes
    except BadSettings:  # shown as unknown; the destination's page says why
        minutes = None
    return Warehouse(
        found, spec.name, spec.type, spec.enabled, minutes,
        await uploads.staged(conn, found), await uploads.recent(conn, found),
        await uploads.schemas(conn, found), await uploads.discards(conn, found),
        await uploads.sync_requested(conn, found),
    )  # fmt: skip
