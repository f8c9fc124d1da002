"""The worker's read-only view of the workspace: destinations and who is connected to whom.

Loaded whole (it is small) and swapped atomically when the workspace changes, so one batch of
events is always routed against one consistent picture.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import dict_row

from engine import codec
from engine.destinations import secrets
from engine.destinations.base import ALL_TYPES, BadSettings, Destination, Request, decode_request
from engine.destinations.catalog import CATALOG, IMPLEMENTED
from engine.pipeline.filters import EventFilter
from engine.pipeline.policy import DeliveryPolicy
from engine.sql import Queries

_Q = Queries.beside(__file__, "topology.sql")


@dataclass(frozen=True)
class Target:
    """A destination as the pipeline sees it. `problem` says why it cannot be delivered to."""

    id: UUID
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    policy: DeliveryPolicy
    plugin: Destination | None
    settings: Any
    problem: str | None
    filter: EventFilter
    secrets: tuple[str, ...] = ()  # values in `config` never to be shown

    def mask(self, text: str) -> str:
        return secrets.mask(text, self.secrets)

    def masked(self, request: Request) -> Request:
        return decode_request(self.mask(codec.encode(request).decode()))


@dataclass(frozen=True)
class Route:
    target: Target
    transformation_id: UUID | None
    transformation_version: int | None


@dataclass(frozen=True)
class Topology:
    targets: dict[UUID, Target]
    routes: dict[UUID, list[Route]]  # by source id

    def routes_of(self, source_id: UUID) -> list[Route]:
        return self.routes.get(source_id, [])


def target(row: dict[str, Any]) -> Target:
    plugin = IMPLEMENTED.get(row["type"])
    settings, problem = None, None
    kind = CATALOG.get(row["type"])
    if plugin is None:
        title = kind.title if kind else row["type"]
        problem = f"this version of Sluice cannot deliver to {title} destinations yet"
    else:
        try:
            settings = plugin.parse_settings(row["config"])
        except BadSettings as exc:
            problem = str(exc)
    try:
        policy = msgspec.convert(row["delivery"], DeliveryPolicy)
    except msgspec.ValidationError as exc:
        policy, problem = DeliveryPolicy(), problem or f"delivery settings: {exc}"
    return Target(
        row["id"], row["name"], row["type"], row["config"], row["enabled"],
        policy, plugin, settings, problem,
        EventFilter.of(row["config"], plugin.supported_types if plugin else ALL_TYPES),
        tuple(plugin.secrets(row["config"])) if plugin else (),
    )  # fmt: skip


async def load(conn: psycopg.AsyncConnection[Any]) -> Topology:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_Q["destinations"])
        targets = {row["id"]: target(row) for row in await cur.fetchall()}
        await cur.execute(_Q["connections"])
        routes: dict[UUID, list[Route]] = {}
        for row in await cur.fetchall():
            dest = targets.get(row["destination_id"])
            if dest is not None and dest.enabled:
                routes.setdefault(row["source_id"], []).append(
                    Route(dest, row["transformation_id"], row["transformation_version"])
                )
    return Topology(targets, routes)
