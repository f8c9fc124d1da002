"""What every warehouse destination shares: each event becomes its warehouse rows when it is
processed (RudderStack's schema, `engine.warehouses.rows`), and the batch router stages them on
this host's data dir (`engine.warehouses.staging`) instead of sending them anywhere. The load
stage takes them from there into the warehouse on the destination's schedule.

The job of an event is one descriptive `PUT warehouse://<type>` request whose body is the
event's rows, which previews show and the failed-events page keeps.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from engine.destinations.base import (
    Files,
    FilesContext,
    Origin,
    Request,
    Stored,
    Unsendable,
    Verdict,
)
from engine.warehouses import rows, staging
from engine.warehouses.errors import EventRefused
from engine.warehouses.names import Provider
from engine.warehouses.settings import WarehouseSettings

STAGING = "warehouse"  # the folder of the data dir where rows wait for their load

Map = Callable[[dict[str, Any], Any, datetime], list[Request]]
MapFrom = Callable[[dict[str, Any], Any, datetime, Origin], list[Request]]
_NOWHERE = Origin(UUID(int=0))  # an event mapped without saying where it is from


def mappings(provider: Provider) -> tuple[Map, MapFrom]:
    """The rows an event becomes, as one request (none for an event that makes no row): with
    the event's origin (`map_from`), and without (`map`)."""

    def map_from(
        event: dict[str, Any], settings: WarehouseSettings, now: datetime, origin: Origin
    ) -> list[Request]:
        metadata: dict[str, Any] = {
            "destinationId": str(origin.destination_id),
            "destinationType": provider,
        }
        if origin.source_id is not None:
            metadata["sourceId"] = str(origin.source_id)
        if origin.received_at is not None:
            metadata["receivedAt"] = _iso(origin.received_at)
        options = rows.Options(settings.transformer_config(), {}, metadata)
        try:
            found = rows.rows(event, provider, options)
        except EventRefused as exc:
            raise Unsendable(str(exc)) from None
        if not found:
            return []
        body = [msgspec.to_builtins(row) for row in found]
        return [Request("PUT", f"warehouse://{provider.lower()}", body=body)]

    def map_event(
        event: dict[str, Any], settings: WarehouseSettings, now: datetime
    ) -> list[Request]:
        return map_from(event, settings, now, _NOWHERE)

    return map_event, map_from


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def staging_key(settings: Any, source_id: UUID, created_at: datetime, job_id: int) -> str:
    """A staged file's name: its source's folder, then the first job's time and id (files of
    a source sort in the order they were staged)."""
    return f"{source_id}/{created_at.astimezone(UTC):%Y%m%dT%H%M%S}-{job_id:016d}"


class Stager:
    """Stores a batch router's files as staged rows on this host's data dir."""

    def __init__(self, context: FilesContext) -> None:
        self._context = context

    async def store(self, settings: Any, key: str, body: bytes) -> Stored:
        if self._context.data_dir is None:
            return Stored(Verdict.RETRY, error="this worker has no data dir to stage rows in")
        root = self._context.data_dir / STAGING
        try:
            await asyncio.to_thread(staging.write, root, self._context.destination_id, key, body)
        except OSError as exc:
            return Stored(Verdict.RETRY, error=f"cannot stage rows in {root}: {exc}")
        return Stored(Verdict.DELIVERED)

    async def aclose(self) -> None:
        return None


FILES = Files(key=staging_key, uploads=Stager, compress=False)
