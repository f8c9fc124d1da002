"""The worker: processor, routers, attempt log, wake-ups and housekeeping in one event loop.

Any number of workers, on any hosts, share the work through partition leases: each stage
(processing, delivery) works on the partitions it leases (`engine.pipeline.shifts`), a fair
share, and a dead worker's are taken over once its leases expire. It waits for PostgreSQL
rather than failing when started before it, follows workspace changes without a restart, and
on stop sends nothing new, lets requests in flight finish (within a grace period), writes their
attempts and gives its leases up before exiting. Whatever a crash interrupts is read again from
the committed positions.
"""

import asyncio
import contextlib
import logging
import os
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
from engine.partitions import PARTITIONS, spans
from engine.pipeline import topology
from engine.pipeline.archive import ArchiveOptions, Archiver
from engine.pipeline.attempts import AttemptLog
from engine.pipeline.backlog import Held, Publisher
from engine.pipeline.housekeeping import housekeep
from engine.pipeline.leases import TTL, Leases
from engine.pipeline.processor import Processor
from engine.pipeline.routers import Router
from engine.pipeline.sender import Sender
from engine.pipeline.shifts import LeasedStage
from engine.pipeline.stats import WorkerMetrics
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore

log = logging.getLogger(__name__)

Stage = Literal["process", "deliver"]
STAGES: tuple[Stage, ...] = ("process", "deliver")
_REFRESH = 10.0  # seconds between workspace reloads when no notification comes
_HOUSEKEEPING = timedelta(hours=1)
_ALERTS = 60.0  # seconds between evaluations of the alert rules
_RETRY = 1.0
_SHUTDOWN_MARGIN = 5.0


@dataclass(frozen=True)
class WorkerOptions:
    database_url: str
    dedup_window: timedelta
    retention: timedelta
    grace: float = 10.0  # seconds in-flight requests get to finish on stop
    # "process": ingest log → jobs (and housekeeping); "deliver": the routers. One process can
    # run both, or each in its own process to use two cores.
    stages: frozenset[Stage] = frozenset({"process", "deliver"})
    archive: ArchiveOptions | None = None  # the raw-event archive (a task of "process")
    node: str = "localhost"  # this host's name among those sharing the database
    lease_seconds: float = TTL  # a dead worker's partitions are taken over after this long


class Worker:
    def __init__(self, options: WorkerOptions, metrics: WorkerMetrics) -> None:
        self._options = options
        self._metrics = metrics
        self._topology = topology.Topology({}, {})
        self._reload = asyncio.Event()
        self._processor: Processor | None = None  # the running shifts', to wake them
        self._router: Router | None = None
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
        holder = f"{opts.node}:{os.getpid()}"
        javascript = JavaScript(CodeStore(pool).code)
        wakes = {"sluice_workspace": self._reload.set}
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._follow_workspace(pool), name="workspace")
        ]
        scheduler = AsyncIOScheduler(timezone=UTC)
        webhooks = httpx.AsyncClient()  # alerts' notifications
        archiver = attempts = None
        stages: list[LeasedStage] = []
        if "process" in opts.stages:
            processing = Leases("process", holder, opts.lease_seconds)
            stages.append(LeasedStage(pool, processing, lambda partitions: _Processing(
                self, Processor(
                    pool, lambda: self._topology, javascript, self._metrics,
                    partitions=partitions, dedup_window=opts.dedup_window,
                    on_jobs=self._wake_routers, leases=processing,
                ),
            )))  # fmt: skip
            wakes["sluice_ingest"] = self._wake_processor
            scheduler.add_job(
                self._housekeep, "interval", seconds=_HOUSEKEEPING.total_seconds(),
                next_run_time=datetime.now(UTC), id="housekeeping", coalesce=True,
                max_instances=1,
            )  # fmt: skip
            scheduler.add_job(
                self._check_alerts, "interval", seconds=_ALERTS, args=[pool, webhooks],
                id="alerts", coalesce=True, max_instances=1,
            )  # fmt: skip
            if opts.archive is not None:
                archiver = Archiver(pool, opts.archive, self._metrics, partitions=range(PARTITIONS))
                tasks.append(asyncio.create_task(archiver.run(), name="archiver"))
        if "deliver" in opts.stages:
            delivery = Leases("deliver", holder, opts.lease_seconds)
            attempts = AttemptLog(pool, self._metrics, self._names, delivery)
            stages.append(LeasedStage(pool, delivery, lambda partitions: _Delivering(
                self, Router(pool, sender, attempts, partitions), attempts, opts.grace,
                delivery.taken_over_of(partitions),
            )))  # fmt: skip
            wakes["sluice_jobs"] = self._wake_routers
            backlog = Publisher(pool, self._held, self._delivering)
            tasks.append(asyncio.create_task(attempts.run(), name="attempt-log"))
            tasks.append(asyncio.create_task(backlog.run(), name="backlog"))
        for stage in stages:
            tasks.append(asyncio.create_task(stage.run(stop), name=stage.leases.stage))
        tasks.append(asyncio.create_task(Listener(opts.database_url, wakes).run(), name="listen"))
        heartbeat = Heartbeat(pool, "worker" if opts.stages == set(STAGES) else
                              "worker/" + "+".join(sorted(opts.stages)))  # fmt: skip
        heartbeat.start()
        scheduler.start()
        log.info("worker running (%s) as %s", ", ".join(sorted(opts.stages)), holder)
        await self._until_stop_or_failure(stop, tasks)
        log.info("worker stopping: finishing the batch and requests in flight")
        scheduler.shutdown(wait=False)
        if archiver is not None:
            archiver.stop()
        # The stages end on their own now that `stop` is set (each shift finishing what it has
        # in hand, deliveries after their requests in flight); they get a bounded time, then
        # whatever remains is cancelled.
        finishing = [t for t in tasks if t.get_name() in (*STAGES, "archiver")]
        if finishing:
            await asyncio.wait(finishing, timeout=opts.grace + _SHUTDOWN_MARGIN)
        if attempts is not None:
            await attempts.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if "deliver" in opts.stages:
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

    def _wake_routers(self, destinations: set[UUID] | None = None) -> None:
        if self._router is not None:
            self._router.wake(destinations)

    def _wake_processor(self) -> None:
        if self._processor is not None:
            self._processor.wake()

    def _held(self) -> dict[UUID, Held]:
        return self._router.held() if self._router is not None else {}

    def _delivering(self) -> list[int]:
        return self._router.partitions if self._router is not None else []

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

    async def _follow_workspace(self, pool: AsyncConnectionPool) -> None:
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
            if self._router is not None:
                self._router.sync(self._topology)

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


class _Processing:
    """A processing shift: the ingest log's partitions → jobs."""

    def __init__(self, worker: Worker, processor: Processor) -> None:
        self._worker = worker
        self._processor = processor

    async def run(self) -> None:
        self._worker._processor = self._processor
        try:
            await self._processor.run()
        finally:
            self._worker._processor = None

    async def stop(self) -> None:
        self._processor.stop()  # (`run` returns once the batch in hand is committed)


class _Delivering:
    """A delivery shift: the routers on the partitions' jobs."""

    def __init__(
        self, worker: Worker, router: Router, attempts: AttemptLog, grace: float,
        taken_over: set[int],
    ) -> None:  # fmt: skip
        self._worker = worker
        self._router = router
        self._attempts = attempts
        self._grace = grace
        self._taken_over = taken_over  # partitions whose last holder may still be sending
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        if self._taken_over:
            # Their last holder stopped renewing; it stops sending soon after, but gives the
            # requests it had in flight a grace period: only then does this shift begin.
            log.info("deliver: taking over partitions %s after %.0f s", spans(self._taken_over),
                     self._grace)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._grace)
        # What an earlier shift settled is written before jobs are read again.
        while not self._stopped.is_set() and not await self._attempts.flush():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), _RETRY)
        if self._stopped.is_set():
            return
        self._router.open(self._worker._topology)
        self._worker._router = self._router
        broken = asyncio.create_task(self._router.broken.wait())
        stopped = asyncio.create_task(self._stopped.wait())
        await asyncio.wait([broken, stopped], return_when=asyncio.FIRST_COMPLETED)
        for waiting in (broken, stopped):
            waiting.cancel()
        if self._router.broken.is_set():
            raise RuntimeError("a destination's router failed")

    async def stop(self) -> None:
        self._stopped.set()  # (first: a shift not yet open never opens)
        if self._worker._router is self._router:
            self._worker._router = None
        await self._router.stop(self._grace)
        await self._attempts.flush()
