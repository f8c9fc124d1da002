"""The first steps of a new workspace, from empty to a first delivered event: shown until that
first delivery, and never again after it."""

from dataclasses import dataclass

from engine import db
from engine.control.graph import Graph
from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "onboarding.sql")


@dataclass(frozen=True)
class FirstSteps:
    """How far a new workspace is on the way to its first delivered event."""

    source: bool
    destination: bool
    connected: bool
    received: bool

    def next(self) -> str:
        """The first step not done yet."""
        return next(
            step for step, done in zip(
                ("source", "destination", "connect", "send", "deliver"),
                (self.source, self.destination, self.connected, self.received, False),
                strict=True,
            ) if not done
        )  # fmt: skip


async def first_steps(conn: Connection, shape: Graph) -> FirstSteps | None:
    """The setup steps done so far; None once an event was ever delivered."""
    if await delivered_ever(conn):
        return None
    return FirstSteps(
        bool(shape.sources), bool(shape.destinations), bool(shape.connections),
        bool(await db.value(conn, _Q["received"])),
    )  # fmt: skip


async def delivered_ever(conn: Connection) -> bool:
    """Whether an event was ever delivered. The counters that show a delivery expire, so the
    first one seen is remembered in the settings: an established workspace whose counters
    are quiet is not taken for a new one, and is not asked to scan them on every page."""
    if await db.value(conn, _Q["remembered"]):
        return True
    if not await db.value(conn, _Q["delivered"]):
        return False
    await conn.execute(_Q["remember"])
    return True
