"""The attempt log: what each delivery attempt came to, appended in group commits.

Routers hand over attempt rows as they happen; at most every 100 ms (sooner when many pile up)
one transaction writes them with one COPY, together with the stats they imply and the routers'
read positions. A position is taken at the same instant as the rows, so it never claims a job
finished whose attempt row is not in the same or an earlier commit. A crash loses at most the
last moment's rows: those jobs are sent again (at-least-once), never lost.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError
from engine.pipeline.leases import Leases
from engine.pipeline.metrics import WorkerMetrics
from engine.position import Position
from engine.store import counters, jobs
from engine.store.jobs import Attempt

log = logging.getLogger(__name__)

_INTERVAL = 0.1
_RETRY = 1.0
_EAGER = 5000  # rows that make a flush start before the interval is up

PositionKey = tuple[UUID, int]  # (destination id, partition)


class AttemptLog:
    def __init__(
        self,
        pool: Pool,
        metrics: WorkerMetrics,
        names: Callable[[], dict[UUID, str]],
        leases: Leases | None = None,
    ) -> None:
        self._pool = pool
        # When given, positions are saved only for partitions still leased: attempt rows say
        # what was sent, always true; a position claims what is settled, which after a lost
        # lease is for the new holder to say.
        self._leases = leases
        self._metrics = metrics
        self._names = names
        self._rows: list[Attempt] = []
        self._counts: counters.Counts = counters.Counts()
        self._latency: counters.Latency = counters.Latency()
        self._positions: dict[PositionKey, Position] = {}
        self._wake = asyncio.Event()
        self._closing = False
        # One flush at a time: a later one must never commit positions while an earlier one,
        # whose rows those positions rely on, could still fail and put its rows back.
        self._flushing = asyncio.Lock()

    def add(
        self,
        attempt: Attempt,
        source_id: UUID,
        outcome: str,
        events: int = 1,
        received_at: datetime | None = None,
    ) -> None:
        self._rows.append(attempt)
        self._counts[source_id, attempt.destination_id, outcome] += events
        if outcome == "delivered" and received_at is not None:
            took = datetime.now(UTC) - received_at
            self._latency[attempt.destination_id, counters.latency_bucket(took)] += events
        self._wake.set()

    def position(self, key: PositionKey, position: Position) -> None:
        """Every job of this destination and partition up to `position` is settled."""
        self._positions[key] = position
        self._wake.set()

    async def run(self) -> None:
        """Idle until something is handed over, then flush at most every `_INTERVAL`."""
        while not self._closing:
            await self._wake.wait()
            if len(self._rows) < _EAGER:
                await asyncio.sleep(_INTERVAL)
            self._wake.clear()
            if not await self.flush():
                self._wake.set()
                await asyncio.sleep(_RETRY)

    async def stop(self) -> None:
        """Write what is left, trying for a little while if the database is away."""
        self._closing = True
        self._wake.set()
        for _ in range(5):
            if await self.flush():
                return
            await asyncio.sleep(_RETRY)
        log.error("attempt log: %d attempt row(s) not written; those jobs will be sent again",
                  len(self._rows))  # fmt: skip

    async def flush(self) -> bool:
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        if not (self._rows or self._counts or self._positions):
            return True
        # Taken together, with no await in between: see the module docstring.
        rows, counts, positions = self._rows, self._counts, self._positions
        latency, self._latency = self._latency, counters.Latency()
        self._rows, self._counts, self._positions = [], counters.Counts(), {}
        try:
            async with db.borrowed(self._pool) as conn, conn.transaction():
                if rows:
                    await jobs.record(conn, rows)
                await counters.add(conn, counts)
                await counters.add_latency(conn, latency)
                if positions and self._leases is not None:
                    partitions = sorted({p for _, p in positions})
                    kept = await self._leases.kept(conn, partitions)
                    positions = {k: v for k, v in positions.items() if k[1] in kept}
                if positions:
                    await jobs.save_positions(conn, positions)
        except DatabaseError as exc:
            log.warning("attempt log: cannot write %d row(s), will retry: %s", len(rows), exc)
            self._rows[:0] = rows
            self._counts.update(counts)
            self._latency.update(latency)
            self._positions = {**positions, **self._positions}
            return False
        self._metrics.count(counts, self._names())
        return True
