"""The processor: ingest log → router jobs, in commit order, one transaction per batch.

Writing a batch's jobs and advancing the read positions commit together, under the positions'
row locks, so a crash anywhere replays the batch from the last committed position: nothing is
lost or skipped, and the duplicate check (`duplicates`) gives the same answer the second time.

The leases are checked last, just before the commit (the position locks, held from the start,
already keep any other processor off the partitions): a batch whose lease was lost while it was
worked is rolled back, and the lease rows are locked only from the check to the commit.

While there is a backlog, the next batch is read ahead (on another connection) while this one
is routed and written. A read depends only on where it starts and on what has committed, not
on the locks, so a batch read ahead from exactly the position the lock then shows is the batch
a locked read would get; read from anywhere else, it is dropped and read again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from engine import codec, db
from engine.db import Pool
from engine.errors import DatabaseError, SandboxUnavailable
from engine.pipeline.leases import LeaseLost, Leases
from engine.pipeline.metrics import WorkerMetrics
from engine.pipeline.processing import duplicates
from engine.pipeline.processing.mapping import Event, route
from engine.pipeline.topology import Topology
from engine.pipeline.wakeups import Wakeups
from engine.position import Position
from engine.store import counters, ingest_log, jobs
from engine.store.counters import NO_DESTINATION
from engine.store.ingest_log import Logged
from engine.transformations.seam import Transformations

log = logging.getLogger(__name__)

_POLL = 2.0  # NOTIFY wakes the processor after ingest commits; the poll is the guarantee
_RETRY = 1.0


class Processor:
    def __init__(
        self,
        pool: Pool,
        topology: Callable[[], Topology],
        transformations: Transformations,
        metrics: WorkerMetrics,
        *,
        partitions: Sequence[int],
        dedup_window: timedelta,
        batch_size: int = 2000,
        wakeups: Wakeups | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._pool = pool
        self._topology = topology
        self._transformations = transformations
        self._metrics = metrics
        self._partitions = list(partitions)
        self._window = dedup_window
        self._batch_size = batch_size
        self._wakeups = wakeups or Wakeups()  # it is woken by ingests and wakes the routers
        self._leases = leases  # when given, a batch commits only while they are held
        self._wake = asyncio.Event()
        self._stopping = False
        self._ahead: tuple[Position, asyncio.Task[list[Logged]]] | None = None
        # While its last batch was a full one: when that batch's newest event was received
        # (how far behind it is, for engine/pressure.py); None while it keeps up.
        self.behind_since: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (this returns at once)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            with self._wakeups.on_ingested(self.wake):
                await self._run()
        finally:
            self.behind_since = None  # (its partitions may be another's now)
            if self._ahead is not None:  # let it hand its connection back before the pool goes
                task = self._ahead[1]
                self._drop_ahead()
                await asyncio.wait([task])

    async def _run(self) -> None:
        while not self._stopping:
            try:
                read = await self.step()
            except DatabaseError as exc:
                log.warning("processor: database error, retrying: %s", exc)
                self.behind_since = None  # (held up by the database, not by intake)
                await asyncio.sleep(_RETRY)
                continue
            except SandboxUnavailable as exc:
                log.warning("processor: %s; retrying", exc)
                self.behind_since = None
                await asyncio.sleep(_RETRY)
                continue
            except LeaseLost as exc:
                log.warning("processor: %s: stopping", exc)
                return
            if read < self._batch_size and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _POLL)
                self._wake.clear()

    async def step(self) -> int:
        """Process one batch; return how many ingest rows it read."""
        topology = self._topology()
        async with db.borrowed(self._pool) as conn, conn.transaction():
            positions = await ingest_log.lock_processor_positions(conn, self._partitions)
            start = min(positions.values())
            rows = await self._read_ahead(start)
            if rows is None:
                rows = await self._read(conn, start)
            if not rows:
                self.behind_since = None
                return 0
            last = rows[-1].position
            if len(rows) == self._batch_size and not self._stopping:
                ahead = asyncio.create_task(self._read_apart(last))
                ahead.add_done_callback(_retrieved)
                self._ahead = (last, ahead)
            # Rows at or before their partition's position were read before (by a previous owner).
            fresh = [row for row in rows if row.position > positions[row.partition]]
            firsts, repeated = await duplicates.sift(conn, fresh, self._window)
            events, skipped = _events(firsts)
            for row in repeated:
                skipped[row.source_id, NO_DESTINATION, "duplicate"] += 1
            routed = await route(events, topology, self._transformations)
            for row in rows:
                routed.counts[row.source_id, NO_DESTINATION, "received"] += 1
            routed.counts.update(skipped)
            await jobs.write(conn, routed.jobs, routed.counts)
            await counters.add_names(
                conn, counters.names_of([(e.source_id, e.payload) for e in events])
            )
            await ingest_log.advance_processor(conn, last, self._partitions)
            if self._leases is not None:  # last: see the module docstring
                await self._leases.check(conn, self._partitions)
        # (Once committed: a batch tried again and again is not a lag. The newest receipt, as
        # receipts are not in commit order: a spool's drain, gateways on other hosts.)
        full = len(rows) == self._batch_size
        self.behind_since = max(row.received_at for row in rows) if full else None
        self._metrics.processed(len(rows))
        self._metrics.count(routed.counts, topology.names())
        if routed.jobs:
            self._wakeups.jobs_written({job.destination_id for job in routed.sendable})
        return len(rows)

    async def _read(self, conn: db.Connection, start: Position) -> list[Logged]:
        return await ingest_log.read(conn, start, self._partitions, self._batch_size)

    async def _read_apart(self, start: Position) -> list[Logged]:
        async with db.borrowed(self._pool) as conn:
            return await self._read(conn, start)

    async def _read_ahead(self, start: Position) -> list[Logged] | None:
        """The batch read ahead from `start`, if that is where it was read from and it could
        be read; else None."""
        if self._ahead is None or self._ahead[0] != start:
            self._drop_ahead()
            return None
        task = self._ahead[1]
        self._ahead = None
        try:
            return await task
        except DatabaseError:
            return None  # read again, under the lock, where an error is handled as usual

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None


def _retrieved(task: asyncio.Task[Any]) -> None:
    """A read ahead that is dropped may have failed: that is no news (it is read again)."""
    if not task.cancelled():
        task.exception()


def _events(rows: list[Logged]) -> tuple[list[Event], counters.Counts]:
    """The rows to route: JSON objects. The others are counted by source (`invalid`)."""
    events, skipped = [], counters.Counts()
    for ingest_id, tx, partition, source_id, received_at, message_id, payload in rows:
        try:
            data = codec.decode(payload)
        except msgspec.DecodeError:
            data = None
        if not isinstance(data, dict):
            log.error("ingest row %d is not a JSON object; skipped", ingest_id)
            skipped[source_id, NO_DESTINATION, "invalid"] += 1
            continue
        events.append(
            Event(int(tx), ingest_id, partition, source_id, received_at, message_id, data)
        )
    return events, skipped
