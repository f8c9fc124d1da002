"""The worker: processor, routers, attempt log, wake-ups and housekeeping in one event loop.

It waits for PostgreSQL rather than failing when started before it, follows workspace changes
without a restart, and on stop sends nothing new, lets requests in flight finish (within a grace
period) and writes their attempts before exiting. Whatever a crash interrupts is read again
from the committed positions.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import psycopg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg_pool import AsyncConnectionPool

from engine.db import connection, connection_pool
from engine.errors import DatabaseUnavailable
from engine.listener import Listener
from engine.partitions import PARTITIONS
from engine.pipeline import topology
from engine.pipeline.attempts import AttemptLog
from engine.pipeline.housekeeping import housekeep
from engine.pipeline.processor import Processor
from engine.pipeline.router import Router
from engine.pipeline.sender import Sender
from engine.pipeline.stats import WorkerMetrics
from engine.pipeline.transform import NoRuntime

log = logging.getLogger(__name__)

Stage = Literal["process", "deliver"]
STAGES: tuple[Stage, ...] = ("process", "deliver")
_REFRESH = 10.0  # seconds between workspace reloads when no notification comes
_HOUSEKEEPING = timedelta(hours=1)


@dataclass(frozen=True)
class WorkerOptions:
    database_url: str
    dedup_window: timedelta
    retention: timedelta
    grace: float = 10.0  # seconds in-flight requests get to finish on stop
    # "process": ingest log → jobs (and housekeeping); "deliver": the routers. One process can
    # run both, or each in its own process to use two cores.
    stages: frozenset[Stage] = frozenset({"process", "deliver"})
    partitions: tuple[int, ...] = tuple(range(PARTITIONS))


class Worker:
    def __init__(self, options: WorkerOptions, metrics: WorkerMetrics) -> None:
        self._options = options
        self._metrics = metrics
        self._topology = topology.Topology({}, {})
        self._reload = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        opts = self._options
        pool = connection_pool(opts.database_url, min_size=2, max_size=8)
        await pool.open(wait=False)
        sender = Sender()
        await sender.start()
        try:
            if await self._first_topology(pool, stop):
                await self._serve(pool, sender, stop)
        finally:
            await sender.close()
            await pool.close()

    async def _serve(self, pool: AsyncConnectionPool, sender: Sender, stop: asyncio.Event) -> None:
        opts = self._options
        attempts = AttemptLog(pool, self._metrics, self._names)
        router = Router(pool, sender, attempts, opts.partitions)
        processor = Processor(
            pool, lambda: self._topology, NoRuntime(), self._metrics,
            partitions=opts.partitions, dedup_window=opts.dedup_window, on_jobs=router.wake,
        )  # fmt: skip
        wakes = {"sluice_workspace": self._reload.set}
        background = [asyncio.create_task(self._follow_workspace(pool, router), name="workspace")]
        stages: list[asyncio.Task[None]] = []
        scheduler = AsyncIOScheduler(timezone=UTC)
        if "process" in opts.stages:
            wakes["sluice_ingest"] = processor.wake
            stages.append(asyncio.create_task(processor.run(), name="processor"))
            scheduler.add_job(
                self._housekeep, "interval", seconds=_HOUSEKEEPING.total_seconds(),
                next_run_time=datetime.now(UTC), id="housekeeping", coalesce=True,
                max_instances=1,
            )  # fmt: skip
        if "deliver" in opts.stages:
            wakes["sluice_jobs"] = router.wake
            router.sync(self._topology)
            stages.append(asyncio.create_task(attempts.run(), name="attempt-log"))
        background.append(asyncio.create_task(Listener(opts.database_url, wakes).run()))
        scheduler.start()
        log.info("worker running (%s): %d partitions", ", ".join(sorted(opts.stages)),
                 len(opts.partitions))  # fmt: skip
        await stop.wait()
        log.info("worker stopping: finishing the batch and requests in flight")
        scheduler.shutdown(wait=False)
        processor.stop()
        for task in background:
            task.cancel()
        await router.stop(opts.grace)
        await attempts.stop()
        await asyncio.gather(*stages, *background, return_exceptions=True)
        log.info("worker stopped")

    def _names(self) -> dict[UUID, str]:
        return {t.id: t.name for t in self._topology.targets.values()}

    async def _first_topology(self, pool: AsyncConnectionPool, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            try:
                async with pool.connection() as conn:
                    self._topology = await topology.load(conn)
                return True
            except psycopg.Error as exc:
                log.warning("worker waiting for the database: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        return False

    async def _follow_workspace(self, pool: AsyncConnectionPool, router: Router) -> None:
        """Reload the workspace on a hint or every `_REFRESH` s; routers follow if running."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), _REFRESH)
            self._reload.clear()
            try:
                async with pool.connection() as conn:
                    self._topology = await topology.load(conn)
            except psycopg.Error as exc:
                log.warning("worker cannot reload the workspace: %s", exc)
                continue
            if "deliver" in self._options.stages:
                router.sync(self._topology)

    async def _housekeep(self) -> None:
        try:
            async with connection(self._options.database_url) as conn:
                await conn.set_autocommit(True)
                await housekeep(conn, self._options.retention)
        except (psycopg.Error, DatabaseUnavailable) as exc:
            log.warning("housekeeping failed, will try again: %s", exc)
