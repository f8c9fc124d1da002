"""The backlog: what waits for delivery, per destination, right now.

Only the routers know it cheaply (counting unsettled jobs in SQL means looking each job's
attempts up), so each delivering worker publishes what its routers hold every few seconds —
jobs and events waiting, retrying ones among them, when the oldest was received — plus a
count, capped, of the jobs it has not read yet when its buffer is full. The Stats and home
pages add up the shares of the workers alive.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError
from engine.heartbeats import ALIVE, this_process
from engine.partitions import PARTITIONS
from engine.position import Position
from engine.sql import Queries
from engine.store import jobs

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "backlog.sql")
EVERY = 5.0  # seconds between publications
CAP = 1_000_000  # unread jobs counted at most
ALL = frozenset(range(PARTITIONS))
_RECOUNT = 100_000  # unread jobs counted again at every publication, at most


@dataclass(frozen=True)
class Held:
    """What one router holds: jobs read and not settled yet."""

    jobs: int
    events: int  # a bundle job holds several
    retrying: int  # jobs tried before
    oldest_at: datetime | None  # received at, of the oldest
    unread_after: Position | None  # more jobs lie past this position, not read yet


@dataclass(frozen=True)
class Backlog:
    """A destination's backlog, all workers together."""

    jobs: int
    events: int
    retrying: int
    oldest_at: datetime | None
    unread: int  # jobs not read into a router yet (each at least an event)

    @property
    def waiting(self) -> int:
        """Events waiting, the unread jobs counted as one each."""
        return self.events + self.unread

    @property
    def capped(self) -> bool:
        return self.unread >= CAP


class Publisher:
    """Publishes `held()`'s backlogs for this process while running; clears them on stop."""

    def __init__(
        self,
        pool: Pool,
        held: Callable[[], dict[UUID, Held]],
        partitions: Callable[[], Sequence[int]],
    ) -> None:
        self._pool = pool
        self._held = held
        self._partitions = partitions  # the routers' now (a worker's share of them changes)
        self._key = this_process()
        self._counted: dict[UUID, tuple[int, float]] = {}  # unread jobs, when counted

    async def run(self) -> None:
        while True:
            try:
                await self.publish()
            except DatabaseError as exc:
                log.debug("backlog not published: %s", exc)
            await asyncio.sleep(EVERY)

    async def publish(self) -> None:
        held = self._held()
        async with db.borrowed(self._pool) as conn:
            rows = [{**self._key, **await self._row(conn, dest, h)} for dest, h in held.items()]
            self._counted = {d: c for d, c in self._counted.items() if d in held}
            await conn.execute(_Q["clear"], self._key)
            async with conn.cursor() as cur:
                await cur.executemany(_Q["publish"], rows)
            await conn.execute(_Q["forget"])

    async def clear(self) -> None:
        with contextlib.suppress(DatabaseError):
            async with db.borrowed(self._pool) as conn:
                await conn.execute(_Q["clear"], self._key)

    async def _row(self, conn: db.Connection, destination: UUID, held: Held) -> dict[str, Any]:
        return {"destination": destination, "jobs": held.jobs, "events": held.events,
                "retrying": held.retrying, "oldest_at": held.oldest_at,
                "unread": await self._unread(conn, destination, held)}  # fmt: skip

    async def _unread(self, conn: db.Connection, destination: UUID, held: Held) -> int:
        """The jobs past the router's buffer, counted again as often as it is cheap: every
        publication up to `_RECOUNT` of them, less often the more there are (a million take
        a fifth of a second to count)."""
        if held.unread_after is None:
            self._counted.pop(destination, None)
            return 0
        now = time.monotonic()
        last, at = self._counted.get(destination, (0, -math.inf))
        if now - at < EVERY * last / _RECOUNT:
            return last
        partitions = self._partitions()
        # (none: all of them, which the count need not check job by job)
        unread = await jobs.unread(conn, destination, held.unread_after, None
                                   if set(partitions) >= ALL else partitions, CAP)  # fmt: skip
        self._counted[destination] = (unread, now)
        return unread


async def current(conn: db.Connection) -> dict[UUID, Backlog]:
    """Each destination's backlog as the live workers last published it; a destination no
    worker delivers for (disabled, or no worker running) is missing."""
    found = await db.tuples(conn, _Q["current"], {"alive": ALIVE}, _Published)
    return {row.destination_id: row.backlog for row in found}


class _Published(NamedTuple):
    destination_id: UUID
    jobs: int
    events: int
    retrying: int
    oldest_at: datetime | None
    unread: int

    @property
    def backlog(self) -> Backlog:
        return Backlog(self.jobs, self.events, self.retrying, self.oldest_at, self.unread)
