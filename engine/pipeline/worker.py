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
from typing import Any, Literal
from uuid import UUID

import httpx
import psycopg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine import alerts
from engine.db import connection, connection_pool, describe
from engine.errors import DatabaseUnavailable
from engine.heartbeats import Heartbeat
from engine.listener import Listener
from engine.partitions import PARTITIONS
from engine.pipeline import topology
from engine.pipeline.archive import ArchiveOptions, Archiver
from engine.pipeline.attempts import AttemptLog
from engine.pipeline.backlog import Publisher
from engine.pipeline.housekeeping import housekeep
from engine.pipeline.processor import Processor
from engine.pipeline.routers import Router
from engine.pipeline.sender import Sender
from engine.pipeline.stats import WorkerMetrics
from engine.sql import Queries
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore

log = logging.getLogger(__name__)

Stage = Literal["process", "deliver"]
STAGES: tuple[Stage, ...] = ("process", "deliver")
_REFRESH = 10.0  # seconds between workspace reloads when no notification comes
_HOUSEKEEPING = timedelta(hours=1)
_ALERTS = 60.0  # seconds between evaluations of the alert rules
_LOCK_RETRY = 5.0  # seconds between attempts to take the delivery lock
_CHECK = 1.0  # seconds between checks that the delivery lock is still held
_CHECK_TIMEOUT = 5  # seconds a lock connection or check may take
_SHUTDOWN_MARGIN = 5.0
_Q = Queries.beside(__file__, "worker.sql")


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
    archive: ArchiveOptions | None = None  # the raw-event archive (a task of "process")


class Worker:
    def __init__(self, options: WorkerOptions, metrics: WorkerMetrics) -> None:
        self._options = options
        self._metrics = metrics
        self._topology = topology.Topology({}, {})
        self._reload = asyncio.Event()
        self.failed = False  # set when a part of the worker ended on its own

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
        backlog = Publisher(pool, router.held, opts.partitions)
        javascript = JavaScript(CodeStore(pool).code)
        processor = Processor(
            pool, lambda: self._topology, javascript, self._metrics,
            partitions=opts.partitions, dedup_window=opts.dedup_window, on_jobs=router.wake,
        )  # fmt: skip
        wakes = {"sluice_workspace": self._reload.set}
        archiver = None
        if opts.archive is not None and "process" in opts.stages:
            archiver = Archiver(pool, opts.archive, self._metrics, partitions=opts.partitions)
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._follow_workspace(pool, router), name="workspace")
        ]
        scheduler = AsyncIOScheduler(timezone=UTC)
        webhooks = httpx.AsyncClient()  # alerts' notifications
        if "process" in opts.stages:
            wakes["sluice_ingest"] = processor.wake
            tasks.append(asyncio.create_task(processor.run(), name="processor"))
            scheduler.add_job(
                self._housekeep, "interval", seconds=_HOUSEKEEPING.total_seconds(),
                next_run_time=datetime.now(UTC), id="housekeeping", coalesce=True,
                max_instances=1,
            )  # fmt: skip
            scheduler.add_job(
                self._check_alerts, "interval", seconds=_ALERTS, args=[pool, webhooks],
                id="alerts", coalesce=True, max_instances=1,
            )  # fmt: skip
        if archiver is not None:
            tasks.append(asyncio.create_task(archiver.run(), name="archiver"))
        if "deliver" in opts.stages:
            wakes["sluice_jobs"] = router.wake
            tasks.append(asyncio.create_task(attempts.run(), name="attempt-log"))
            tasks.append(asyncio.create_task(self._deliver(router, attempts, stop), name="deliver"))
            tasks.append(asyncio.create_task(router.broken.wait(), name="routers"))
            tasks.append(asyncio.create_task(backlog.run(), name="backlog"))
        tasks.append(asyncio.create_task(Listener(opts.database_url, wakes).run(), name="listen"))
        heartbeat = Heartbeat(pool, "worker" if opts.stages == set(STAGES) else
                              "worker/" + "+".join(sorted(opts.stages)))  # fmt: skip
        heartbeat.start()
        scheduler.start()
        log.info("worker running (%s): %d partitions", ", ".join(sorted(opts.stages)),
                 len(opts.partitions))  # fmt: skip
        await self._until_stop_or_failure(stop, tasks)
        log.info("worker stopping: finishing the batch and requests in flight")
        scheduler.shutdown(wait=False)
        processor.stop()
        if archiver is not None:
            archiver.stop()
        # The stages end on their own now that `stop` is set (delivery after its requests in
        # flight); they get a bounded time, then whatever remains is cancelled.
        finishing = [t for t in tasks if t.get_name() in ("processor", "deliver", "archiver")]
        if finishing:
            await asyncio.wait(finishing, timeout=opts.grace + _SHUTDOWN_MARGIN)
        await router.stop(opts.grace)
        await attempts.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await backlog.clear()
        await javascript.close()  # an isolate left open keeps the process from exiting
        await webhooks.aclose()
        await heartbeat.stop()
        log.info("worker stopped")

    async def _until_stop_or_failure(
        self, stop: asyncio.Event, tasks: list[asyncio.Task[Any]]
    ) -> None:
        """Wait for a stop request; a task that ends before it is a failure of the worker, which
        stops so that its supervisor (systemd, `sluice run`) starts it afresh."""
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stopping in done:
            return
        for task in done:
            error = None if task.cancelled() else task.exception()
            log.critical("worker: %s ended unexpectedly: %r", task.get_name(), error,
                         exc_info=error)  # fmt: skip
            self.failed = True
        stop.set()

    async def _deliver(self, router: Router, attempts: AttemptLog, stop: asyncio.Event) -> None:
        """Run the routers while holding the delivery lock: one worker delivers at a time (two
        would send every job twice); another one stands by and takes over if this one goes."""
        standing_by = False
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._options.database_url, autocommit=True, connect_timeout=_CHECK_TIMEOUT
                ) as conn:
                    cur = await conn.execute(_Q["try_lock"])
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        await self._hold_and_deliver(conn, router, attempts, stop, standing_by)
                        standing_by = False
                    elif not standing_by:
                        log.warning("another worker is delivering; standing by")
                        standing_by = True
            except (psycopg.Error, TimeoutError) as exc:
                reason = describe(exc) if isinstance(exc, psycopg.Error) else "no answer"
                log.warning("worker lost the delivery lock: %s", reason)
            finally:
                await router.stop(self._options.grace)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _LOCK_RETRY)

    async def _hold_and_deliver(
        self,
        conn: psycopg.AsyncConnection[Any],
        router: Router,
        attempts: AttemptLog,
        stop: asyncio.Event,
        taking_over: bool,
    ) -> None:
        if taking_over:
            # The worker that held the lock may still be finishing its last requests (it stops
            # within a check interval and its grace period) and writing their attempts.
            log.info("worker taking over delivery")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._options.grace + 2 * _CHECK + 1)
        # What an earlier turn of this worker settled is written before jobs are read again.
        while not stop.is_set() and not await attempts.flush():
            await asyncio.sleep(_CHECK)
        if stop.is_set():
            return
        router.open(self._topology)
        log.info("worker delivering")
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CHECK)
            # The lock lives as long as this connection: stop at once when it does not answer.
            await asyncio.wait_for(conn.execute(_Q["ping"]), _CHECK_TIMEOUT)

    def _names(self) -> dict[UUID, str]:
        return {t.id: t.name for t in self._topology.targets.values()}

    async def _first_topology(self, pool: AsyncConnectionPool, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            try:
                async with pool.connection() as conn:
                    self._topology = await topology.load(conn)
                return True
            except psycopg.Error as exc:
                log.warning("worker waiting for the database: %s", describe(exc))
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
                log.warning("worker cannot reload the workspace: %s", describe(exc))
                continue
            except Exception:  # keep following: the next reload may well work
                log.exception("worker cannot reload the workspace")
                continue
            router.sync(self._topology)  # (nothing to do while not delivering)

    async def _check_alerts(self, pool: AsyncConnectionPool, client: httpx.AsyncClient) -> None:
        try:
            async with pool.connection() as conn:
                opened, closed = await alerts.evaluate(conn)
                await alerts.notify(conn, client, opened, closed)
        except psycopg.Error as exc:
            log.warning("alert rules not evaluated, will try again: %s", describe(exc))
        except PoolTimeout:
            log.warning("alert rules not evaluated, will try again: database unavailable")

    async def _housekeep(self) -> None:
        try:
            async with connection(self._options.database_url) as conn:
                await conn.set_autocommit(True)
                await housekeep(conn, self._options.retention)
        except psycopg.Error as exc:
            log.warning("housekeeping failed, will try again: %s", describe(exc))
        except DatabaseUnavailable as exc:
            log.warning("housekeeping failed, will try again: %s", exc)
