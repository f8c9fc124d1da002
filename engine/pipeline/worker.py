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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine import db
from engine.db import Connection, Pool
from engine.destinations.warehouse import STAGING
from engine.errors import DatabaseError
from engine.heartbeats import READS_INGEST_EVENTS, Heartbeat
from engine.listener import Listener
from engine.partitions import PARTITIONS, spans
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.backlog import Publisher
from engine.pipeline.delivery.routers import Routers
from engine.pipeline.delivery.sender import Sender
from engine.pipeline.housekeeping import housekeep
from engine.pipeline.leases import TTL, Leases
from engine.pipeline.loading import Loading
from engine.pipeline.metrics import WorkerMetrics
from engine.pipeline.processing.archive import ArchiveOptions, Archiver
from engine.pipeline.processing.processor import Processor
from engine.pipeline.shifts import LeasedStage, Shift
from engine.pipeline.topology import Following
from engine.pipeline.wakeups import Wakeups
from engine.pressure import Publisher as Pressure
from engine.transformations.runtime import MAX_EVENTS, JavaScript
from engine.transformations.seam import Transformations
from engine.transformations.store import CodeStore

log = logging.getLogger(__name__)

Stage = Literal["process", "deliver", "load"]
STAGES: tuple[Stage, ...] = ("process", "deliver", "load")
_HOUSEKEEPING = timedelta(hours=1)
_RETRY = 1.0
_SHUTDOWN_MARGIN = 5.0


@dataclass(frozen=True)
class Periodic:
    """Work done every `every` seconds by the processing stage, on a connection of its pool (the
    appliance hands the control plane's here: evaluating the alert rules); a database error
    is tried again the next time."""

    name: str
    every: float
    run: Callable[[Connection], Awaitable[None]]


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
    periodic: tuple[Periodic, ...] = ()
    data_dir: Path | None = None  # where warehouse rows are staged (None: nowhere)
    transform_max_events: int = MAX_EVENTS  # events a transformation may make of one


class Worker:
    def __init__(self, options: WorkerOptions, metrics: WorkerMetrics) -> None:
        self._options = options
        self._metrics = metrics
        self.failed = False  # set when a part of the worker ended on its own

    async def run(self, stop: asyncio.Event) -> None:
        pool = db.connection_pool(self._options.database_url, min_size=2, max_size=8)
        await pool.open(wait=False)
        sender = Sender()
        await sender.start()
        wakeups = Wakeups()
        following = Following(pool, wakeups)
        try:
            if await following.first(stop):
                await self._serve(pool, sender, wakeups, following, stop)
        finally:
            await sender.close()
            await pool.close()

    async def _serve(
        self, pool: Pool, sender: Sender, wakeups: Wakeups, following: Following,
        stop: asyncio.Event,
    ) -> None:  # fmt: skip
        opts = self._options
        holder = f"{opts.node}:{os.getpid()}"
        javascript = JavaScript(CodeStore(pool).code, max_events=opts.transform_max_events)
        channels = {"sluice_workspace": wakeups.workspace_changed}
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(following.follow(), name="workspace")]
        scheduler = AsyncIOScheduler(timezone=UTC)
        archiver = attempts = backlog = None
        stages: list[LeasedStage] = []
        pressures: list[Pressure] = []  # (see engine/pressure.py)
        if "process" in opts.stages:
            leases = Leases("process", holder, opts.lease_seconds)
            processing = _Processing(pool, following, javascript, self._metrics, wakeups,
                                     leases, opts.dedup_window)  # fmt: skip
            stages.append(LeasedStage(pool, leases, processing))
            pressures.append(Pressure(pool, "process", processing.behind_since,
                                      waits_for_vendors=False))  # fmt: skip
            channels["sluice_ingest"] = wakeups.ingested
            scheduler.add_job(
                self._housekeep, "interval", seconds=_HOUSEKEEPING.total_seconds(),
                next_run_time=datetime.now(UTC), id="housekeeping", coalesce=True,
                max_instances=1,
            )  # fmt: skip
            for job in opts.periodic:
                scheduler.add_job(_periodically, "interval", seconds=job.every, args=[pool, job],
                                  id=job.name, coalesce=True, max_instances=1)  # fmt: skip
            if opts.archive is not None:
                archiver = Archiver(pool, opts.archive, self._metrics, partitions=range(PARTITIONS))
                tasks.append(asyncio.create_task(archiver.run(), name="archiver"))
        if "deliver" in opts.stages:
            leases = Leases("deliver", holder, opts.lease_seconds)
            attempts = AttemptLog(pool, self._metrics, following.names, leases)
            routers = Routers(pool, sender, attempts, opts.data_dir)
            delivery = _Delivery(routers, attempts, following, wakeups, leases, opts.grace)
            stages.append(LeasedStage(pool, leases, delivery))
            channels["sluice_jobs"] = wakeups.jobs_written
            backlog = Publisher(pool, routers.held, routers.delivering)
            tasks.append(asyncio.create_task(attempts.run(), name="attempt-log"))
            tasks.append(asyncio.create_task(backlog.run(), name="backlog"))
            pressures.append(Pressure(pool, "deliver", routers.behind_since,
                                      waits_for_vendors=True))  # fmt: skip
        if "load" in opts.stages and opts.data_dir is not None:
            loading = Loading(pool, following, opts.data_dir / STAGING, opts.node)
            channels["sluice_warehouse"] = loading.wake.set
            tasks.append(asyncio.create_task(loading.run(stop), name="load"))
        for stage in stages:
            tasks.append(asyncio.create_task(stage.run(stop), name=stage.leases.stage))
        for pressure in pressures:
            tasks.append(asyncio.create_task(pressure.run(), name="pressure"))
        tasks.append(
            asyncio.create_task(Listener(opts.database_url, channels).run(), name="listen")
        )
        heartbeat = Heartbeat(pool, "worker" if opts.stages == set(STAGES) else
                              "worker/" + "+".join(sorted(opts.stages)),
                              report=lambda: {READS_INGEST_EVENTS: 1})  # fmt: skip
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
        if backlog is not None:
            await backlog.clear()
        for pressure in pressures:
            await pressure.clear()
        await javascript.close()  # an isolate left open keeps the process from exiting
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

    async def _housekeep(self) -> None:
        try:
            async with db.connection(self._options.database_url, autocommit=True) as conn:
                await housekeep(conn, self._options.retention,
                                dedup_window=self._options.dedup_window)  # fmt: skip
        except DatabaseError as exc:
            log.warning("housekeeping failed, will try again: %s", exc)


async def _periodically(pool: Pool, job: Periodic) -> None:
    try:
        async with db.borrowed(pool) as conn:
            await job.run(conn)
    except DatabaseError as exc:
        log.warning("%s not done, will try again: %s", job.name, exc)


class _Processing:
    """The processing stage: on each set of partitions a processor, the ingest log → jobs."""

    def __init__(
        self, pool: Pool, following: Following, transformations: Transformations,
        metrics: WorkerMetrics, wakeups: Wakeups, leases: Leases, dedup_window: timedelta,
    ) -> None:  # fmt: skip
        self._pool = pool
        self._following = following
        self._transformations = transformations
        self._metrics = metrics
        self._wakeups = wakeups
        self._leases = leases
        self._dedup_window = dedup_window
        self._processor: Processor | None = None  # the latest shift's

    def begin(self, partitions: list[int]) -> Shift:
        self._processor = Processor(
            self._pool, self._following.topology, self._transformations, self._metrics,
            partitions=partitions, dedup_window=self._dedup_window, wakeups=self._wakeups,
            leases=self._leases,
        )  # fmt: skip
        return self._processor

    def behind_since(self) -> datetime | None:
        """See `Processor.behind_since`."""
        return None if self._processor is None else self._processor.behind_since


class _Delivery:
    """The delivery stage: on each set of partitions the routers, jobs → destinations."""

    def __init__(
        self, routers: Routers, attempts: AttemptLog, following: Following, wakeups: Wakeups,
        leases: Leases, grace: float,
    ) -> None:  # fmt: skip
        self.routers = routers
        self.attempts = attempts
        self.following = following
        self.wakeups = wakeups
        self.leases = leases
        self.grace = grace  # seconds requests in flight get when a shift stops

    def begin(self, partitions: list[int]) -> Shift:
        return _DeliveryShift(self, partitions, self.leases.taken_over_of(partitions))


class _DeliveryShift:
    def __init__(self, stage: _Delivery, partitions: list[int], taken_over: set[int]) -> None:
        self._stage = stage
        self._partitions = partitions
        self._taken_over = taken_over  # partitions whose last holder may still be sending
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        stage = self._stage
        if self._taken_over:
            # Their last holder stopped renewing; it stops sending soon after, but gives the
            # requests it had in flight a grace period: only then does this shift begin.
            log.info("deliver: taking over partitions %s after %.0f s", spans(self._taken_over),
                     stage.grace)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), stage.grace)
        # What an earlier shift settled is written before jobs are read again.
        while not self._stopped.is_set() and not await stage.attempts.flush():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), _RETRY)
        if self._stopped.is_set():
            return
        routers = stage.routers
        with stage.following.followed_by(routers.sync), stage.wakeups.on_jobs(routers.wake):
            routers.open(stage.following.topology(), self._partitions)
            broken = asyncio.create_task(routers.broken.wait())
            stopped = asyncio.create_task(self._stopped.wait())
            await asyncio.wait([broken, stopped], return_when=asyncio.FIRST_COMPLETED)
            for waiting in (broken, stopped):
                waiting.cancel()
        if routers.broken.is_set():
            raise RuntimeError("a destination's router failed")

    async def stop(self) -> None:
        self._stopped.set()  # (first: a shift not yet open never opens)
        await self._stage.routers.stop(self._stage.grace)
        await self._stage.attempts.flush()
