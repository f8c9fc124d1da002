"""Partition leases: how worker processes on any number of hosts share a stage's partitions.

Every fifth of the lease time a worker says it takes part in the stage, renews the leases it
holds and works out its fair share of the partitions from the workers seen lately (ordered by
name; the first ones take one more when the count does not divide). Holding fewer, it claims
free or expired leases; holding more, it gives the extra ones up — after it has stopped working
on them (`renew` says which to keep, `release` gives the others up). A lease not renewed for
the lease time (`TTL`, 15 s by default) is free for another worker: a host that died loses its
partitions after that long, and the others resume them from the committed positions.

A lease is a promise until it expires, no more: work is committed under `check`, in the same
transaction, which locks the lease rows so they cannot change holder before the commit. A
worker that lost a lease therefore commits nothing for that partition.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from engine import db
from engine.db import Connection
from engine.errors import SluiceError
from engine.partitions import PARTITIONS
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "leases.sql")
Stage = Literal["process", "deliver"]
TTL = 15.0  # seconds a lease lasts without renewal (a fifth of it between renewals)


@dataclass(frozen=True)
class Holding:
    """A worker's share of a stage, as the control plane shows it."""

    stage: str
    holder: str
    partitions: list[int]
    behind_since: datetime | None  # processing: receipt of the event it stands at, oldest


async def holdings(conn: Connection) -> list[Holding]:
    """Every live lease holder with its partitions, per stage."""
    return await db.rows(conn, _Q["holdings"], None, Holding)


class _Claimed(NamedTuple):
    partition: int
    expired: bool  # taken over from a holder whose lease expired (not one that gave it up)


class LeaseLost(SluiceError):
    """Work for a partition whose lease this worker no longer holds."""


def share(holders: list[str], me: str, partitions: int = PARTITIONS) -> int:
    """How many partitions `me` should hold among `holders` (ordered)."""
    count, rank = len(holders), holders.index(me)
    return partitions // count + (1 if rank < partitions % count else 0)


class Leases:
    """One worker's leases of one stage. Not safe for concurrent use: one task drives it."""

    def __init__(self, stage: Stage, holder: str, ttl: float = TTL) -> None:
        self.stage = stage
        self.holder = holder
        self.ttl = ttl
        self.every = ttl / 5  # seconds between renewals
        self.held: frozenset[int] = frozenset()
        # Claimed from a holder whose lease expired: it may still be finishing requests it had
        # in flight (its grace period), which whoever starts on them should wait out.
        self.taken_over: set[int] = set()
        self._renewed = 0.0  # monotonic time of the last renewal

    @property
    def _key(self) -> dict[str, Any]:
        return {"stage": self.stage, "holder": self.holder, "ttl": f"{self.ttl} seconds"}

    async def renew(self, conn: Connection) -> frozenset[int]:
        """One round: take part, renew, claim up to the fair share. Returns the partitions this
        worker should work on now — at most its share; any more it still holds are to be
        stopped, then released (`release`)."""
        started = time.monotonic()  # (the leases run from no earlier than this)
        async with conn.transaction():
            await conn.execute(_Q["present"], self._key)
            fair = share(await db.column(conn, _Q["holders"], self._key), self.holder)
            held = set(await db.column(conn, _Q["renew"], self._key))
            wanted = fair - len(held)
            if wanted > 0:
                params = {**self._key, "wanted": wanted}
                claimed = await db.tuples(conn, _Q["claim"], params, _Claimed)
                held |= {c.partition for c in claimed}
                self.taken_over |= {c.partition for c in claimed if c.expired}
            await conn.execute(_Q["forget"])
        self._renewed = started
        self.held = frozenset(held)
        self.taken_over &= held
        return frozenset(sorted(held)[:fair])

    def taken_over_of(self, partitions: list[int]) -> set[int]:
        """Those of `partitions` claimed from an expired holder since last asked."""
        found = self.taken_over & set(partitions)
        self.taken_over -= found
        return found

    async def release(self, conn: Connection, partitions: set[int]) -> None:
        """Give these leases up (work on them has stopped)."""
        if partitions:
            params = {**self._key, "partitions": sorted(partitions)}
            await conn.execute(_Q["release"], params)
            self.held -= partitions

    async def leave(self, conn: Connection) -> None:
        """Stop taking part: every lease given up (on a clean stop)."""
        await conn.execute(_Q["leave"], self._key)
        self.held = frozenset()

    def fresh(self) -> bool:
        """Renewed recently enough that the leases cannot expire before work started now is
        done with (new work waits while this is false)."""
        return time.monotonic() - self._renewed < self.ttl - 2 * self.every

    async def kept(self, conn: Connection, partitions: list[int]) -> set[int]:
        """In the transaction committing work on `partitions`: those still this worker's; they
        stay so until the commit (renewals go on meanwhile: see leases.sql). Best just before
        it, so that a lease lost while the work was done is found."""
        return set(await db.column(conn, _Q["check"], {**self._key, "partitions": partitions}))

    async def check(self, conn: Connection, partitions: list[int]) -> None:
        """LeaseLost unless all of `partitions` are still this worker's (see `kept`)."""
        lost = set(partitions) - await self.kept(conn, partitions)
        if lost:
            raise LeaseLost(f"{self.stage}: partitions {sorted(lost)} are no longer leased here")
