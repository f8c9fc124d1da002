"""The jobs: one per request a destination is to be sent (or, for a file destination, per
bundle of events), their attempts — appended, never overwritten: a job's state is what its
attempts came to — and each destination's router positions, how far its jobs are settled.

Every statement on these tables is here. Jobs are read in commit order (`engine.position`), as
the ingest log is; both tables are partitioned by day with the ingest log.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import msgspec

from engine import codec, copytext, db
from engine.db import Connection
from engine.position import Position
from engine.sql import Queries
from engine.store import counters

_Q = Queries.beside(__file__, "jobs.sql")
BUNDLE_EVENTS = 200  # events in a file destination's job at most: what a router reads stays bounded
# The latest attempts of failed jobs, or of jobs waiting to be tried again (see jobs.sql).
_STATES = {False: {"state": "aborted", "later": "after_abort"},
           True: {"state": "retrying", "later": "after_retry"}}  # fmt: skip


class Job(NamedTuple):
    """A jobs row, in the COPY's column order, plus why it failed if it did."""

    destination_id: UUID
    source_id: UUID
    partition: int
    user_key: str
    ingest_tx: int
    ingest_id: int
    received_at: datetime
    message_id: str
    event_type: str
    event_name: str | None
    request: str
    events: int = 1  # more than one in a bundle
    member_txs: str | None = None  # a bundle's events (PostgreSQL array text), for a replay
    member_ids: str | None = None
    error: str | None = None


async def write(conn: Connection, jobs: Sequence[Job], counts: counters.Counts) -> None:
    """Write jobs, and the counts of what became of their events, in the caller's transaction.

    Sendable jobs go in with one COPY (their routers are woken at the commit); a job that failed
    before it could be sent (the transformation or the mapping refused it) is written with its
    `aborted` attempt, so it is visible and replayable like any delivery failure.
    """
    sendable = [job for job in jobs if job.error is None]
    if sendable:
        async with conn.cursor() as cur, cur.copy(_Q["copy_jobs"]) as copy:
            # Every column but the last, `error`, which only failed jobs have.
            await copy.write("".join(copytext.line(job[:-1]) for job in sendable))
        await conn.execute(_Q["notify_jobs"])
    failed = [job._asdict() for job in jobs if job.error is not None]
    if failed:
        async with conn.cursor() as cur:
            await cur.executemany(_Q["insert_failed_job"], failed)
    await counters.add(conn, counts)


async def wake(conn: Connection) -> None:
    """Wake the routers at the commit: there are jobs to read."""
    await conn.execute(_Q["notify_jobs"])


class Queued(NamedTuple):
    """A job as its router reads it (the columns of the `read` query)."""

    id: int
    tx: str
    created_at: datetime
    partition: int
    user_key: str
    source_id: UUID
    request: str  # the JSON text as stored
    events: int
    received_at: datetime

    @property
    def position(self) -> Position:
        return Position.of(self.tx, self.id)


class Tried(NamedTuple):
    """What a job's attempts so far came to (the columns of the `attempted` query)."""

    settled: bool  # delivered, aborted, replayed or discarded: nothing more to send
    attempts: int
    first_at: datetime
    next_retry_at: datetime | None


async def router_positions(
    conn: Connection, destination: UUID, partitions: Sequence[int]
) -> dict[int, Position]:
    """How far a destination's router has settled its jobs, per partition it has a row for."""
    cur = await conn.execute(
        _Q["router_positions"], {"destination": destination, "partitions": partitions}
    )
    return {partition: Position.of(tx, id_) for partition, tx, id_ in await cur.fetchall()}


async def read(
    conn: Connection, destination: UUID, after: Position, partitions: Sequence[int], limit: int
) -> tuple[list[Queued], dict[int, Tried]]:
    """Up to `limit` of a destination's jobs past `after`, in commit order, and what the
    attempts came to of those tried before (by job id)."""
    params = {**after.params(), "destination": destination, "partitions": partitions,
              "limit": limit}  # fmt: skip
    found = await db.tuples(conn, _Q["read"], params, Queued)
    if not found:
        return found, {}
    made = [job.created_at for job in found]
    params = {"ids": [job.id for job in found], "first": min(made), "last": max(made)}
    cur = await conn.execute(_Q["attempted"], params)
    return found, {job_id: Tried(*tried) for job_id, *tried in await cur.fetchall()}


class Attempt(NamedTuple):
    """A job_attempts row, in the COPY's column order."""

    job_id: int
    job_created_at: datetime
    destination_id: UUID
    attempt: int
    state: str  # delivered, retry, aborted (and replayed, discarded: settled by a person)
    status_code: int | None
    error: str | None
    response: str | None
    next_retry_at: datetime | None


# The types of an Attempt's columns, in order, for a binary COPY.
_ATTEMPT_TYPES = ["int8", "timestamptz", "uuid", "int4", "text", "int4", "text", "text",
                  "timestamptz"]  # fmt: skip


async def record(conn: Connection, attempts: Sequence[Attempt]) -> None:
    """Append attempt rows with one COPY, in the binary format: a quarter of the text format's
    CPU per row, built in Python."""
    async with conn.cursor() as cur, cur.copy(_Q["copy_attempts"]) as copy:
        copy.set_types(_ATTEMPT_TYPES)
        for row in attempts:
            await copy.write_row(_storable(row))


def _storable(row: Attempt) -> Attempt:
    """The row as PostgreSQL text can hold it: a NUL (a vendor's answer may contain one)
    becomes U+FFFD, as in the text format (`engine.copytext`)."""
    if "\x00" in (row.error or "") or "\x00" in (row.response or ""):
        return row._replace(
            error=row.error and row.error.replace("\x00", "\ufffd"),
            response=row.response and row.response.replace("\x00", "\ufffd"),
        )
    return row


async def save_positions(conn: Connection, positions: Mapping[tuple[UUID, int], Position]) -> None:
    """Every job of each (destination, partition) up to its position is settled (positions
    only ever move forward)."""
    keys = sorted(positions)  # a fixed order: concurrent upserts then never deadlock
    await conn.execute(
        _Q["save_positions"],
        {
            "destinations": [k[0] for k in keys],
            "partitions": [k[1] for k in keys],
            "txs": [str(positions[k].tx) for k in keys],
            "ids": [positions[k].id for k in keys],
        },
    )


async def unread(
    conn: Connection,
    destination: UUID,
    after: Position,
    partitions: Sequence[int] | None,
    cap: int,
) -> int:
    """How many of a destination's jobs of `partitions` (None: all) lie past `after`, counting
    up to `cap` at most."""
    params = {**after.params(), "destination": destination, "cap": cap,
              "partitions": None if partitions is None else list(partitions)}  # fmt: skip
    return int(await db.value(conn, _Q["unread"], params) or 0)


@dataclass(frozen=True)
class FailedJob:
    """A job given up on (or, listed with `retrying`, waiting for its next try): what it was
    made of, its request and its last attempt."""

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
    def members(self) -> list[Position]:
        """Where the job's event(s) stand in the ingest log."""
        if self.member_txs is None or self.member_ids is None:
            return [Position.of(self.ingest_tx, self.ingest_id)]
        return [Position.of(tx, id_) for tx, id_ in zip(self.member_txs, self.member_ids,
                                                         strict=True)]  # fmt: skip

    def as_json(self) -> str:
        """The failed job as a line of JSON, its request as stored (numbers as written)."""
        return codec.encode(
            {**asdict(self), "request": msgspec.Raw(self.request.encode())}
        ).decode()


_BEGINNING = (datetime.fromisoformat("0001-01-01T00:00:00+00:00"), 0)


@dataclass(frozen=True)
class Failing:
    """Which failed jobs (or, `retrying`, jobs waiting for their next try): a destination's (by
    name), those failed in [since, until], those of these ids, of one kind of failure (its
    status and error); each None matches all."""

    destination: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    job_ids: Sequence[int] | None = None
    retrying: bool = False
    group: str | None = None  # a kind of failure (FailureGroup.key)

    def _query(self, name: str, ordered: bool = False) -> LiteralString:
        """The query `name` on these jobs: `ordered` (oldest failure first) for a page of them,
        else as they come (to count or group them)."""
        order = "order" if ordered else "in_any_order"
        return _Q.compose(name, **_STATES[self.retrying], order=order)

    def _params(self, after: tuple[datetime, int] | None, limit: int | None) -> dict[str, Any]:
        after_at, after_id = after or _BEGINNING
        return {"destination": self.destination, "since": self.since, "until": self.until,
                "job_ids": None if self.job_ids is None else list(self.job_ids),
                "group": self.group, "limit": limit, "after_at": after_at,
                "after_id": after_id}  # fmt: skip


async def failed(
    conn: Connection,
    which: Failing,
    *,
    after: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> list[FailedJob]:
    """Those jobs, oldest failure first, after a place in the list (failed at, job id)."""
    query = which._query("failed", ordered=True)
    return await db.rows(conn, query, which._params(after, limit), FailedJob)


async def count_failed(conn: Connection, which: Failing) -> int:
    """How many jobs `failed` would list, without a limit."""
    found = await db.value(conn, which._query("count_failed"), which._params(None, None))
    return int(found or 0)


async def failed_per_destination(conn: Connection, which: Failing) -> dict[str, int]:
    """Destination name → how many of those jobs it has."""
    cur = await conn.execute(which._query("failed_per_destination"), which._params(None, None))
    return {name: jobs for name, jobs in await cur.fetchall()}


@dataclass(frozen=True)
class FailureGroup:
    """Failed jobs of a destination with the same HTTP status and error (but for its ids, times
    and long numbers)."""

    destination_id: UUID
    destination: str
    status_code: int | None
    error: str | None  # the latest one's
    key: str  # what `Failing.group` takes to select them
    jobs: int
    events: int
    first_at: datetime
    last_at: datetime
    sample_id: int  # the job that failed last
    variants: int  # errors that differ only in their ids, times, numbers


async def failure_groups(conn: Connection, which: Failing, limit: int) -> list[FailureGroup]:
    """Those jobs by destination and kind of failure, the most frequent first."""
    query = which._query("failed_groups")
    params = {**which._params(None, None), "groups": limit}  # (every job, `limit` groups)
    return await db.rows(conn, query, params, FailureGroup)


IdRange = tuple[int, int]  # job ids in (first, last]


async def replay_outcomes(
    conn: Connection, made: IdRange, since: datetime, destination: str | None
) -> dict[str, int]:
    """Latest state (`sending`: none yet) → how many of the jobs a replay begun at `since`
    made, among those of ids in `made` (of a destination, by name, or of all)."""
    params = {"after": made[0], "until": made[1], "since": since, "destination": destination}
    cur = await conn.execute(_Q["replay_outcomes"], params)
    return {state: jobs for state, jobs in await cur.fetchall()}


async def last_id(conn: Connection) -> int:
    """The last job id handed out (not only committed): the jobs made later have greater ids,
    so two of these bound what was made in between."""
    return int(await db.value(conn, _Q["last_id"]))


async def lock_replays(conn: Connection) -> None:
    """Held to the end of the transaction: one batch of a replay or discard at a time, so the
    next finds the jobs the last one settled."""
    await conn.execute(_Q["lock_replays"])


async def settle(conn: Connection, jobs: Sequence[FailedJob], state: str) -> None:
    """A last attempt row for each failed job: `replayed` or `discarded`."""
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


async def discard_all(conn: Connection, destination: UUID) -> None:
    """Settle every waiting job of a (deleted) destination as `discarded`."""
    await conn.execute(_Q["discard_all"], {"id": destination})


class MadeOf(NamedTuple):
    """A job made from an event, with its tries (JSON text, in order)."""

    id: int
    destination_id: UUID
    created_at: datetime
    request: str
    events: int
    tries: str


async def made_of(
    conn: Connection,
    event: Position,
    received_at: datetime,
    partition: int,
    bundled: Sequence[UUID],
) -> list[MadeOf]:
    """The jobs made from an event (and from its replays): its own, and the bundles of the
    file destinations `bundled` that hold it."""
    params = {**event.params(), "at": received_at, "partition": partition,
              "bundled": list(bundled)}  # fmt: skip
    return await db.tuples(conn, _Q["made_of"], params, MadeOf)


async def newest_made_of_each(
    conn: Connection, events: Sequence[tuple[Position, int, datetime]], bundled: Sequence[UUID]
) -> list[tuple[int, MadeOf]]:
    """For each of a page of events (position, partition, received at), by ingest id: its
    newest job at each destination, as `made_of` finds them, without request or answers."""
    times = [received_at for _, _, received_at in events]
    params = {"txs": [str(p.tx) for p, _, _ in events], "ids": [p.id for p, _, _ in events],
              "partitions": [partition for _, partition, _ in events], "since": min(times),
              "until": max(times), "bundled": list(bundled)}  # fmt: skip
    cur = await conn.execute(_Q["newest_made_of_each"], params)
    return [(event_id, MadeOf(*job)) for event_id, *job in await cur.fetchall()]


class Unsettled(msgspec.Struct):
    """A job not delivered nor given up yet, as a backup keeps it."""

    destination: str  # by name
    source: str
    partition: int
    user_key: str
    received_at: datetime
    message_id: str
    event_type: str
    event_name: str | None
    request: str  # the JSON as stored
    events: int


async def unsettled(conn: Connection) -> list[Unsettled]:
    """Every job no attempt settled yet, in commit order (this reads every job kept)."""
    return await db.rows(conn, _Q["unsettled"], None, Unsettled)


async def restore(conn: Connection, job: Unsettled) -> bool:
    """Queue a backed-up job again, for the destination and source of the same names; False
    when either is missing."""
    cur = await conn.execute(_Q["restore"], msgspec.structs.asdict(job))
    return cur.rowcount > 0


async def attempts_partition(conn: Connection, jobs_partition: str) -> list[str]:
    """The job_attempts partition covering the same days as a jobs partition."""
    cur = await conn.execute(_Q["attempts_partition"], {"jobs": jobs_partition})
    return [name for (name,) in await cur.fetchall()]


async def unsettled_in(conn: Connection, partition: str) -> bool:
    """Whether a jobs day partition holds a job of an enabled destination still unsettled."""
    return bool(await db.value(conn, db.naming(_Q["unsettled_in"], partition=partition)))
