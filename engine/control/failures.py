"""Failed jobs: list them, replay them, discard them. The CLI and the UI call these same services.

A replay runs the original event (kept in the ingest log) through its connection again — the
event filters, the transformation and the mapping with the destination's *current* settings,
so fixing a setting and replaying is the way to recover — and writes new jobs with the same
`messageId`. The old job gets a `replayed` attempt row and leaves the failed list, and its
events stop counting as failed (`_settle`): a replay delivered is not a failure any more.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from engine import codec, db
from engine.db import Connection
from engine.destinations.secrets import mask
from engine.pipeline.processing.mapping import Event, Routed, route
from engine.pipeline.topology import Route, Target, Topology, load
from engine.sql import Queries
from engine.store import counters, ingest_log, jobs
from engine.store.jobs import FailedJob, FailureGroup
from engine.transformations.seam import Transformations

_Q = Queries.beside(__file__, "failures.sql")
_BATCH = 100  # failed jobs per transaction; a bundle's events count as one
_BEGINNING = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


@dataclass
class ReplayReport:
    replayed: int = 0  # failed jobs sent on their way again
    jobs: int = 0  # new jobs written for them (a transformation may fan out or drop)
    missing: int = 0  # failed jobs whose event is past retention: nothing to replay
    missing_events: int = 0  # events of bundles replayed in part (the rest past retention)

    def add(self, other: "ReplayReport") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Selection:
    """Which failed jobs: those of a destination (by name), failed since a moment, and (when
    given) only these job ids, of one kind of failure; each left out matches all."""

    destination: str | None = None
    since: datetime | None = None
    job_ids: tuple[int, ...] | None = None
    group: str | None = None  # one kind of failure (FailureGroup.key)

    def failing(self, until: datetime | None, retrying: bool = False) -> jobs.Failing:
        """These jobs, failed until `until`, as the jobs store selects them."""
        return jobs.Failing(self.destination, self.since, until, self.job_ids, retrying,
                            self.group)  # fmt: skip


Cursor = tuple[datetime, int]  # (failed at, job id) of the last job done: work goes on after it
START: Cursor = (_BEGINNING, 0)


async def failed(
    conn: Connection,
    selection: Selection = Selection(),
    *,
    until: datetime | None = None,
    limit: int | None = 1000,
    after: Cursor = START,
    retrying: bool = False,
) -> list[FailedJob]:
    """Aborted jobs (or, `retrying`, jobs waiting for their next try), oldest failure first,
    secrets masked."""
    found = await jobs.failed(conn, selection.failing(until, retrying), after=after, limit=limit)
    targets = (await load(conn)).targets if found else {}
    return [_masked(job, targets.get(job.destination_id)) for job in found]


async def count(
    conn: Connection,
    selection: Selection = Selection(),
    until: datetime | None = None,
    *,
    retrying: bool = False,
) -> int:
    """How many jobs `failed` would list, without a limit."""
    return await jobs.count_failed(conn, selection.failing(until, retrying))


async def per_destination(conn: Connection) -> dict[str, tuple[int, int]]:
    """Destination name → (failed jobs, jobs being retried), for those that have any."""
    failing = await jobs.failed_per_destination(conn, jobs.Failing())
    retrying = await jobs.failed_per_destination(conn, jobs.Failing(retrying=True))
    return {name: (failing.get(name, 0), retrying.get(name, 0)) for name in failing | retrying}


async def groups(
    conn: Connection,
    selection: Selection,
    until: datetime,
    *,
    retrying: bool = False,
    limit: int = 100,
) -> list[tuple[FailureGroup, FailedJob | None]]:
    """The jobs `failed` would list, by destination and kind of failure (HTTP status and
    error), the most frequent first, each with its latest job as a sample; secrets masked."""
    found = await jobs.failure_groups(conn, selection.failing(until, retrying), limit)
    if not found:
        return []
    targets = (await load(conn)).targets
    picked = replace(selection, job_ids=tuple(g.sample_id for g in found))
    samples = {job.job_id: job for job in await failed(conn, picked, until=until, limit=None,
                                                       retrying=retrying)}  # fmt: skip
    return [(_masked_group(g, targets.get(g.destination_id)), samples.get(g.sample_id))
            for g in found]  # fmt: skip


def _masked_group(group: FailureGroup, target: Target | None) -> FailureGroup:
    return replace(group, error=None if group.error is None else _text(group.error, target))


@dataclass(frozen=True)
class Outcomes:
    """What became of the jobs a replay made: delivered, failed again (and still failed), or
    failed again and since replayed again or discarded by someone, or still being sent."""

    delivered: int
    failed: int
    replayed: int
    discarded: int
    sending: int

    @property
    def total(self) -> int:
        return self.delivered + self.failed + self.replayed + self.discarded + self.sending


async def last_job(conn: Connection) -> int:
    """The last job id handed out: a replay's jobs are among those made between two."""
    return await jobs.last_id(conn)


async def outcomes(
    conn: Connection, made: jobs.IdRange, since: datetime, destination: str | None
) -> Outcomes:
    """Of the jobs made by a replay begun at `since` (of a destination, by name, or of all),
    their ids in `made` (`last_job` before its first batch and after its last)."""
    states = await jobs.replay_outcomes(conn, made, since, destination)
    return Outcomes(states.get("delivered", 0), states.get("aborted", 0),
                    states.get("replayed", 0), states.get("discarded", 0),
                    states.get("sending", 0) + states.get("retry", 0))  # fmt: skip


def _masked(job: FailedJob, target: Target | None) -> FailedJob:
    """The job as it may be shown: the destination's secrets masked in request, error, answer
    (without its destination, credentials after `Basic` and `Bearer` still are)."""
    return replace(
        job,
        request=target.shown(job.request) if target is not None else mask(job.request, ()),
        error=None if job.error is None else _text(job.error, target),
        response=None if job.response is None else _text(job.response, target),
    )


def _text(text: str, target: Target | None) -> str:
    """An error or an answer as anyone may see it (`Target.mask_text`; without its
    destination, credentials after `Basic` and `Bearer` still masked)."""
    return target.mask_text(text) if target is not None else mask(text, ())


async def now(conn: Connection) -> datetime:
    """The database's clock: what has failed until now is what a replay or discard takes on;
    an event that fails again meanwhile is a new failure, not more work for it."""
    moment: datetime = await db.value(conn, _Q["now"])
    return moment


async def replay(
    conn: Connection,
    transformations: Transformations,
    selection: Selection = Selection(),
    until: datetime | None = None,
) -> ReplayReport:
    """Re-enqueue every failed job matching the selection that failed until `until` (default:
    now), in batches of one transaction each (`conn` in autocommit mode, so that each batch
    really commits on its own)."""
    report, after = ReplayReport(), START
    until = until or await now(conn)
    while True:
        step, cursor = await replay_step(conn, transformations, selection, until, after)
        report.add(step)
        if cursor is None:
            return report
        after = cursor


async def replay_step(
    conn: Connection,
    transformations: Transformations,
    selection: Selection,
    until: datetime,
    after: Cursor = START,
) -> tuple[ReplayReport, Cursor | None]:
    """One batch of a replay, in one transaction: what it did, and where the next batch starts
    (None: nothing is left). A page shows progress by calling it batch after batch."""
    report = ReplayReport()
    topology = await load(conn)
    async with conn.transaction():
        await jobs.lock_replays(conn)
        batch = await failed(conn, selection, until=until, limit=_BATCH, after=after)
        if not batch:
            return report, None
        await _replay_batch(conn, batch, topology, transformations, report)
    if len(batch) < _BATCH:
        return report, None  # that was the rest
    return report, (batch[-1].failed_at, batch[-1].job_id)


async def discard(conn: Connection, selection: Selection, until: datetime | None = None) -> int:
    """Settle the failed jobs matching the selection as `discarded`: they leave the failed
    list and are never sent. Returns how many; one transaction per batch (autocommit `conn`)."""
    until = until or await now(conn)
    discarded, after = 0, START
    while True:
        async with conn.transaction():
            await jobs.lock_replays(conn)
            batch = await failed(conn, selection, until=until, limit=_BATCH, after=after)
            if not batch:
                return discarded
            await _settle(conn, batch, "discarded")
        discarded += len(batch)
        after = (batch[-1].failed_at, batch[-1].job_id)


async def _settle(conn: Connection, settled: list[FailedJob], state: str) -> None:
    """The jobs leave the failed list (`replayed` or `discarded`), and the counters' failures:
    their events are counted as `state` instead, at the minute they failed."""
    await jobs.settle(conn, settled, state)
    await counters.settle(conn, [(job.failed_at, job.source_id, job.destination_id, job.events)
                                 for job in settled], state)  # fmt: skip


async def _replay_batch(
    conn: Connection,
    batch: list[FailedJob],
    topology: Topology,
    transformations: Transformations,
    report: ReplayReport,
) -> None:
    logged = await ingest_log.originals(conn, [member for job in batch for member in job.members])
    routed, replayed = Routed(), []
    for job in batch:
        target = topology.targets.get(job.destination_id)
        events = [
            Event(member.tx, member.id, job.partition, job.source_id, original.received_at,
                  original.message_id, codec.decode(original.payload))
            for member in job.members
            if (original := logged.get(member.id)) is not None
        ]  # fmt: skip
        if not events or target is None:
            report.missing += 1
            continue
        report.missing_events += len(job.members) - len(events)
        connection = next(
            (r for r in topology.routes_of(job.source_id) if r.target.id == target.id),
            Route(target, None, None),
        )
        again = await route(events, Topology(topology.targets, {job.source_id: [connection]}),
                            transformations)  # fmt: skip
        routed.jobs += again.jobs
        routed.counts.update(again.counts)
        replayed.append(job)
    await jobs.write(conn, routed.jobs, routed.counts)
    await _settle(conn, replayed, "replayed")
    report.replayed += len(replayed)
    report.jobs += len(routed.jobs)
