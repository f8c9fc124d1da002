"""The seam where user transformations run, between event filters and destination mapping.

The processor hands each connection's events to `Transformations.run` in chunks and gets back,
per event, the events to map (none: dropped; several: fanned out) or the error that fails it.
The sandboxed JavaScript runtime plugs in here; until it does, a connection that names a
transformation fails its events visibly (they can be replayed once the runtime is there).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class Metadata:
    source_id: UUID
    destination_id: UUID
    destination_type: str
    message_id: str


@dataclass(frozen=True)
class Transformed:
    events: list[dict[str, Any]]
    error: str | None = None


class Transformations(Protocol):
    async def run(
        self, version: int, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]: ...


class NoRuntime:
    """Stands in until the JavaScript runtime lands: every transformed event fails, visibly."""

    async def run(
        self, version: int, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]:
        error = "user transformations cannot run in this version of Sluice"
        return [Transformed([], error) for _ in events]
