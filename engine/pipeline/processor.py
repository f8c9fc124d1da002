"""The processor: ingest log → router jobs, in commit order, one transaction per batch.

Writing a batch's jobs and advancing the read positions commit together, under the positions'
row locks, so a crash anywhere replays the batch from the last committed position: nothing is
lost or skipped, and the deterministic duplicate check gives the same answer the second time.

While there is a backlog, the next batch is read ahead (on another connection) while this one
is routed and written. A read depends only on where it starts and on what has committed, not
on the locks, so a batch read ahead from exactly the position the lock then shows is the batch
a locked read would get; read from anywhere else, it is dropped and read again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from engine import codec
from engine.db import describe
from engine.errors import SandboxUnavailable
from engine.pipeline import jobstore, stats
from engine.pipeline.leases import LeaseLost, Leases
from engine.pipeline.routing import NO_DESTINATION, Event, route
from engine.pipeline.topology import Topology
from engine.pipeline.transform import Transformations
from engine.sql import Queries

_Q = Queries.beside(__file__, "processor.sql")
log = logging.getLogger(__name__)

Position = tuple[int, int]  # (transaction id, row id): commit order
_POLL = 2.0  # NOTIFY wakes the processor at each ingest commit; the poll is the guarantee
_RETRY = 1.0


class Processor:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        topology: Callable[[], Topology],
        transformations: Transformations,
        metrics: stats.WorkerMetrics,
        *,
        partitions: Sequence[int],
        dedup_window: timedelta,
        batch_size: int = 2000,
        on_jobs: Callable[[set[UUID]], None] = lambda destinations: None,
        leases: Leases | None = None,
    ) -> None:
        self._pool = pool
        self._topology = topology
        self._transformations = transformations
        self._metrics = metrics
        self._partitions = list(partitions)
        self._window = dedup_window
        self._batch_size = batch_size
        self._on_jobs = on_jobs
        self._leases = leases  # when given, a batch commits only while they are held
        self._wake = asyncio.Event()
        self._stopping = False
        self._ahead: tuple[Position, asyncio.Task[list[Any]]] | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._ahead is not None:  # let it hand its connection back before the pool goes
                task = self._ahead[1]
                self._drop_ahead()
                await asyncio.wait([task])

    async def _run(self) -> None:
        while not self._stopping:
            try:
                read = await self.step()
            except psycopg.Error as exc:
                log.warning("processor: database error, retrying: %s", describe(exc))
                await asyncio.sleep(_RETRY)
                continue
            except SandboxUnavailable as exc:
                log.warning("processor: %s; retrying", exc)
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
        async with self._pool.connection() as conn, conn.transaction():
            positions = await _lock_positions(conn, self._partitions)
            if self._leases is not None:
                await self._leases.check(conn, self._partitions)
            start = min(positions.values())
            rows = await self._read_ahead(start)
            if rows is None:
                rows = await self._read(conn, start)
            if not rows:
                return 0
            last = (int(rows[-1][1]), rows[-1][0])
            if len(rows) == self._batch_size and not self._stopping:
                ahead = asyncio.create_task(self._read_apart(last))
                ahead.add_done_callback(_retrieved)
                self._ahead = (last, ahead)
            events, skipped = _events(rows, positions)
            routed = await route(events, topology, self._transformations)
            for row in rows:
                routed.counts[row[3], NO_DESTINATION, "received"] += 1
            routed.counts.update(skipped)
            await jobstore.write(conn, routed)
            await stats.add_names(conn, stats.names_of([(e.source_id, e.payload) for e in events]))
            await conn.execute(
                _Q["advance"], {"tx": str(last[0]), "id": last[1], "partitions": self._partitions}
            )
        self._metrics.processed(len(rows))
        self._metrics.count(routed.counts, {t.id: t.name for t in topology.targets.values()})
        if routed.jobs:
            self._on_jobs({job.destination_id for job in routed.sendable})
        return len(rows)

    async def _read(self, conn: psycopg.AsyncConnection[Any], start: Position) -> list[Any]:
        cur = await conn.execute(
            _Q["read"],
            {
                "tx": str(start[0]),
                "id": start[1],
                "partitions": self._partitions,
                "limit": self._batch_size,
                "window": self._window,
            },
        )
        return await cur.fetchall()

    async def _read_apart(self, start: Position) -> list[Any]:
        async with self._pool.connection() as conn:
            return await self._read(conn, start)

    async def _read_ahead(self, start: Position) -> list[Any] | None:
        """The batch read ahead from `start`, if that is where it was read from and it could
        be read; else None."""
        if self._ahead is None or self._ahead[0] != start:
            self._drop_ahead()
            return None
        task = self._ahead[1]
        self._ahead = None
        try:
            return await task
        except psycopg.Error:
            return None  # read again, under the lock, where an error is handled as usual

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None


def _retrieved(task: asyncio.Task[Any]) -> None:
    """A read ahead that is dropped may have failed: that is no news (it is read again)."""
    if not task.cancelled():
        task.exception()


async def _lock_positions(
    conn: psycopg.AsyncConnection[Any], partitions: list[int]
) -> dict[int, Position]:
    cur = await conn.execute(_Q["lock_positions"], {"partitions": partitions})
    return {row[0]: (int(row[1]), row[2]) for row in await cur.fetchall()}


def _events(rows: list[Any], positions: dict[int, Position]) -> tuple[list[Event], stats.Counts]:
    """The rows to route: past their partition's position, not duplicates, JSON objects.
    The others are counted by source (`duplicate`, `invalid`)."""
    events, skipped = [], stats.Counts()
    for ingest_id, tx, partition, source_id, received_at, message_id, payload, dup in rows:
        if (int(tx), ingest_id) <= positions[partition]:
            continue  # this partition was read further before (by a previous owner)
        if dup:
            skipped[source_id, NO_DESTINATION, "duplicate"] += 1
            continue
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
