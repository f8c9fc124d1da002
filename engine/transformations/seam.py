"""The seam where user transformations run, between event filters and destination mapping.

The processor hands each connection's events to `Transformations.run` in chunks and gets back,
per event, the events to map (none: dropped; several: fanned out) or the error that fails it.
`engine.transformations.runtime.JavaScript` is the implementation: RudderStack-style code in
V8 isolates.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
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
    logs: list[str] = field(default_factory=list)  # what the code log()ged for this event


class Transformations(Protocol):
    async def run(
        self, version: int, events: Sequence[tuple[dict[str, Any], Metadata]]
    ) -> list[Transformed]: ...
