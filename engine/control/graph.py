"""The workspace as the control plane draws it: sources, destinations, the connections
between them (with their ids and whether each is switched on), and the transformations."""

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from engine import db
from engine.db import Connection
from engine.destinations.catalog import TYPES
from engine.sql import Queries

_Q = Queries.beside(__file__, "graph.sql")
T = TypeVar("T")


@dataclass(frozen=True)
class SourceNode:
    id: UUID
    name: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class DestinationNode:
    id: UUID
    name: str
    type: str
    enabled: bool
    created_at: datetime

    @property
    def title(self) -> str:
        kind = TYPES.get(self.type)
        return kind.title if kind else self.type


@dataclass(frozen=True)
class Edge:
    id: UUID
    source_id: UUID
    destination_id: UUID
    transformation: str | None
    enabled: bool


@dataclass(frozen=True)
class TransformationNode:
    id: UUID
    name: str


@dataclass(frozen=True)
class Graph:
    sources: list[SourceNode]
    destinations: list[DestinationNode]
    connections: list[Edge]
    transformations: list[TransformationNode]

    def live(self, edge: Edge) -> bool:
        """Whether events flow along this connection: it and both its ends are switched on."""
        ends = {s.id: s.enabled for s in self.sources} | {
            d.id: d.enabled for d in self.destinations
        }
        return (
            edge.enabled
            and ends.get(edge.source_id, False)
            and ends.get(edge.destination_id, False)
        )


async def load(conn: Connection) -> Graph:
    return Graph(
        await _rows(conn, "sources", SourceNode),
        await _rows(conn, "destinations", DestinationNode),
        await _rows(conn, "connections", Edge),
        await _rows(conn, "transformations", TransformationNode),
    )


async def _rows(conn: Connection, query: str, shape: type[T]) -> list[T]:
    return await db.rows(conn, _Q[query], None, shape)
