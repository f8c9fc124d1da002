"""Failed jobs: list them, replay them. The CLI and the UI call these same services.

A replay runs the original event (kept in the ingest log) through its connection again — the
event filters, the transformation and the mapping with the destination's *current* settings,
so fixing a setting and replaying is the way to recover — and writes new jobs with the same
`messageId`. The old job gets a `replayed` attempt row and leaves the failed list.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row

from engine import codec
from engine.destinations.secrets import mask
from engine.pipeline import jobstore
from engine.pipeline.routing import Event, Routed, route
from engine.pipeline.topology import Route, Target, Topology, load
from engine.pipeline.transform import Transformations
from engine.sql import Queries

_Q = Queries.beside(__file__, "failures.sql")
_ATTEMPTS: dict[bool, LiteralString] = {
    False: _Q["attempts"]
    .replace("{state}", "aborted")
    .replace("{later}", "b.state IN ('replayed', 'discarded')"),
    True: _Q["attempts"].replace("{state}", "retry").replace("{later}", "true"),
}
_LISTS: dict[bool, LiteralString] = {
    retrying: _Q["failed"].replace("{attempts}", query) for retrying, query in _ATTEMPTS.items()
}
_COUNTS: dict[bool, LiteralString] = {
    retrying: "SELECT count(*) FROM (" + query + ") AS f" for retrying, query in _ATTEMPTS.items()
}
_PER_DESTINATION: dict[bool, LiteralString] = {
    retrying: "SELECT destination, count(*) FROM (" + query + ") AS f GROUP BY destination"
    for retrying, query in _ATTEMPTS.items()
}
_BATCH = 100  # failed jobs per transaction; a bundle's events count as one
_BEGINNING = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class FailedJob:
    job_id: int
    created_at: datetime
    destination_id: UUID
    destination: str
    source_id: UUID
    message_id: str
    event_type: str
    event_name: str | None
    user_key: str
    failed_at: datetime
    attempts: int
    status_code: int | None
    error: str | None
    response: str | None
    next_retry_at: datetime | None  # jobs being retried: when the next try is due
    request: str
    ingest_tx: str
    ingest_id: int
    partition: int
    received_at: datetime
    events: int  # more than one: a bundle of a file destination (S3), replayed whole
    member_txs: list[str] | None  # bundles only
    member_ids: list[int] | None

    @property
    def members(self) -> list[tuple[str, int]]:
        """The ingest log rows of the job's event(s)."""
        if self.member_txs is None or self.member_ids is None:
            return [(self.ingest_tx, self.ingest_id)]
        return list(zip(self.member_txs, self.member_ids, strict=True))

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["request"] = codec.decode(self.request)
        return msgspec.to_builtins(data)  # type: ignore[no-any-return]


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
    given) only these job ids; each left out matches all."""

    destination: str | None = None
    since: datetime | None = None
    job_ids: tuple[int, ...] | None = None


Cursor = tuple[datetime, int]  # (failed at, job id) of the last job done: work goes on after it
START: Cursor = (_BEGINNING, 0)


def _params(selection: Selection, until: datetime | None) -> dict[str, Any]:
    return {
        "destination": selection.destination,
        "since": selection.since,
        "until": until,
        "job_ids": list(selection.job_ids) if selection.job_ids is not None else None,
    }


async def failed(
    conn: psycopg.AsyncConnection[Any],
    selection: Selection = Selection(),
    *,
    until: datetime | None = None,
    limit: int | None = 1000,
    after: Cursor = START,
    retrying: bool = False,
) -> list[FailedJob]:
    """Aborted jobs (or, `retrying`, jobs waiting for their next try), oldest failure first,
    secrets masked."""
    params = _params(selection, until) | {
        "limit": limit,
        "after_at": after[0],
        "after_id": after[1],
    }
    async with conn.cursor(row_factory=class_row(FailedJob)) as cur:
        await cur.execute(_LISTS[retrying], params)
        jobs = await cur.fetchall()
    targets = (await load(conn)).targets if jobs else {}
    return [_masked(job, targets.get(job.destination_id)) for job in jobs]


async def count(
    conn: psycopg.AsyncConnection[Any],
    selection: Selection = Selection(),
    until: datetime | None = None,
    *,
    retrying: bool = False,
) -> int:
    """How many jobs `failed` would list, without a limit."""
    params = _params(selection, until) | {"limit": None, "after_at": START[0], "after_id": 0}
    cur = await conn.execute(_COUNTS[retrying], params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def per_destination(conn: psycopg.AsyncConnection[Any]) -> dict[str, tuple[int, int]]:
    """Destination name → (failed jobs, jobs being retried), for those that have any."""
    params = _params(Selection(), None) | {"limit": None, "after_at": START[0], "after_id": 0}
    found: dict[str, list[int]] = {}
    for index, retrying in enumerate((False, True)):
        cur = await conn.execute(_PER_DESTINATION[retrying], params)
        for name, jobs in await cur.fetchall():
            found.setdefault(name, [0, 0])[index] = jobs
    return {name: (counts[0], counts[1]) for name, counts in found.items()}


def _masked(job: FailedJob, target: Target | None) -> FailedJob:
    """The job as it may be shown: the destination's secrets masked in request, error, answer
    (without its destination, credentials after `Basic` and `Bearer` still are)."""
    secrets = target.secrets if target is not None else ()
    return replace(
        job,
        request=mask(job.request, secrets),
        error=None if job.error is None else mask(job.error, secrets),
        response=None if job.response is None else mask(job.response, secrets),
    )


async def now(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """The database's clock: what has failed until now is what a replay or discard takes on;
    an event that fails again meanwhile is a new failure, not more work for it."""
    cur = await conn.execute(_Q["now"])
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def replay(
    conn: psycopg.AsyncConnection[Any],
    transformations: Transformations,
    selection: Selection = Selection(),
) -> ReplayReport:
    """Re-enqueue every failed job matching the selection, in batches of one transaction each
    (`conn` in autocommit mode, so that each batch really commits on its own)."""
    report, started, after = ReplayReport(), await now(conn), START
    while True:
        step, cursor = await replay_step(conn, transformations, selection, started, after)
        report.add(step)
        if cursor is None:
            return report
        after = cursor


async def replay_step(
    conn: psycopg.AsyncConnection[Any],
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
        await conn.execute(_Q["lock_replays"])
        batch = await failed(conn, selection, until=until, limit=_BATCH, after=after)
        if not batch:
            return report, None
        await _replay_batch(conn, batch, topology, transformations, report)
    if len(batch) < _BATCH:
        return report, None  # that was the rest
    return report, (batch[-1].failed_at, batch[-1].job_id)


async def discard(
    conn: psycopg.AsyncConnection[Any], selection: Selection, until: datetime | None = None
) -> int:
    """Settle the failed jobs matching the selection as `discarded`: they leave the failed
    list and are never sent. Returns how many; one transaction per batch (autocommit `conn`)."""
    until = until or await now(conn)
    discarded, after = 0, START
    while True:
        async with conn.transaction():
            await conn.execute(_Q["lock_replays"])
            batch = await failed(conn, selection, until=until, limit=_BATCH, after=after)
            if not batch:
                return discarded
            await _settle(conn, batch, "discarded")
        discarded += len(batch)
        after = (batch[-1].failed_at, batch[-1].job_id)


async def _settle(conn: psycopg.AsyncConnection[Any], jobs: list[FailedJob], state: str) -> None:
    """A last attempt row for each job: `replayed` or `discarded`."""
    await conn.execute(
        _Q["settle"],
        {
            "ids": [job.job_id for job in jobs],
            "created": [job.created_at for job in jobs],
            "destinations": [job.destination_id for job in jobs],
            "attempts": [job.attempts + 1 for job in jobs],
            "state": state,
        },
    )


async def _replay_batch(
    conn: psycopg.AsyncConnection[Any],
    batch: list[FailedJob],
    topology: Topology,
    transformations: Transformations,
    report: ReplayReport,
) -> None:
    members = [member for job in batch for member in job.members]
    cur = await conn.execute(
        _Q["events"], {"txs": [tx for tx, _ in members], "ids": [id_ for _, id_ in members]}
    )
    logged = {row[0]: row[1:] for row in await cur.fetchall()}
    routed, replayed = Routed(), []
    for job in batch:
        target = topology.targets.get(job.destination_id)
        events = [
            Event(int(tx), id_, job.partition, job.source_id, logged[id_][1], logged[id_][2],
                  codec.decode(logged[id_][0]))
            for tx, id_ in job.members
            if id_ in logged
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
    await jobstore.write(conn, routed)
    await _settle(conn, replayed, "replayed")
    report.replayed += len(replayed)
    report.jobs += len(routed.jobs)
