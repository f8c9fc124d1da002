"""The stored events as the control plane shows them: the newest first, in commit order — a walk
back through the ingest log that reads at most `SCAN` events per page, however selective the
filter — and what became of one event at each destination: its jobs, their tries, the request
sent and the answer received, or why there was none (filtered, dropped by a transformation, not
processed yet)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row

from engine import codec
from engine.destinations.secrets import mask
from engine.pipeline.topology import Target, load
from engine.sql import Queries

_Q = Queries.beside(__file__, "events.sql")


def _composed(name: str) -> LiteralString:
    return _Q[name].replace("{walk}", _Q["walk"]).replace("{columns}", _Q["columns"])


_RECENT, _WALKED, _EVENT = _composed("recent"), _composed("walked"), _composed("event")
SCAN = 20_000  # events a page of a search walks back through at most

Point = tuple[str, int]  # (transaction, ingest id): a place in the log's commit order
LATEST: Point = (str(2**64 - 1), 0)
EARLIEST: Point = ("0", 0)


@dataclass(frozen=True)
class Filters:
    """Each left out (None) matches every event. `user` is a userId or an anonymousId."""

    source: UUID | None = None
    type: str | None = None
    name: str | None = None  # a track call's event, a page or screen call's name
    user: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    id: int
    tx: str
    source_id: UUID
    partition: int
    received_at: datetime
    message_id: str
    type: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    payload: str  # the JSON text as stored

    @property
    def point(self) -> Point:
        return (self.tx, self.id)


@dataclass(frozen=True)
class Page:
    events: list[StoredEvent]  # newest first
    more: Point | None  # where to walk on from for older ones; None: the log ends here


async def recent(
    conn: psycopg.AsyncConnection[Any],
    filters: Filters = Filters(),
    *,
    before: Point = LATEST,
    after: Point = EARLIEST,
    limit: int = 50,
    scan: int = SCAN,
) -> Page:
    """The newest events matching `filters` between `after` and `before` (both excluded),
    among the `scan` newest there."""
    params = {
        "before_tx": before[0], "before_id": before[1], "after_tx": after[0],
        "after_id": after[1], "scan": scan, "limit": limit, "source": filters.source,
        "type": filters.type, "name": filters.name, "user": filters.user,
    }  # fmt: skip
    async with conn.cursor(row_factory=class_row(StoredEvent)) as cur:
        await cur.execute(_RECENT, params)
        events = await cur.fetchall()
    if len(events) == limit:
        return Page(events, events[-1].point)
    walk = await conn.execute(_WALKED, params)
    row = await walk.fetchone()
    walked_all = row is None or row[2] < scan  # the walk reached the end of the log
    return Page(events, None if walked_all else (row[0], row[1]))  # type: ignore[index]


class Try(msgspec.Struct, frozen=True):
    attempt: int
    state: str  # delivered, retry, aborted, replayed, discarded
    at: datetime
    status: int | None = None
    error: str | None = None
    response: str | None = None
    next: datetime | None = None


@dataclass(frozen=True)
class Made:
    """A job made from the event: one request (or a file of many events), and its tries."""

    job_id: int
    created_at: datetime
    request: Any  # as sent, secrets masked
    events: int
    tries: list[Try]


@dataclass(frozen=True)
class Outcome:
    destination_id: UUID
    destination: str
    # delivered, retrying, failed, replayed, discarded, sending (a job, no answer yet),
    # filtered, dropped (by a transformation), waiting (not processed yet), not sent
    status: str
    detail: str
    jobs: list[Made]


_STATES = {"delivered": "delivered", "retry": "retrying", "aborted": "failed",
           "replayed": "replayed", "discarded": "discarded"}  # fmt: skip
_tries = msgspec.json.Decoder(list[Try])


async def trace(
    conn: psycopg.AsyncConnection[Any], tx: str, ingest_id: int, received_at: datetime | None
) -> tuple[StoredEvent, list[Outcome]] | None:
    """An event and what became of it at each destination connected to its source (and at any
    other that has jobs from it); None when it is not (or no longer) stored. `received_at`,
    when known, spares looking in every day's partition."""
    async with conn.cursor(row_factory=class_row(StoredEvent)) as cur:
        await cur.execute(_EVENT, {"tx": tx, "id": ingest_id, "at": received_at})
        event = await cur.fetchone()
    if event is None:
        return None
    topology = await load(conn)
    routes = {r.target.id: r for r in topology.routes_of(event.source_id)}
    payload = codec.decode(event.payload)
    partition = event.partition
    bundled = [t.id for t in topology.targets.values() if t.plugin and t.plugin.files]
    found = await conn.execute(
        _Q["jobs"],
        {"tx": tx, "id": ingest_id, "at": event.received_at, "source": event.source_id,
         "bundled": bundled, "partition": partition},
    )  # fmt: skip
    made: dict[UUID, list[Made]] = {}
    for job_id, destination_id, created_at, request, events, tries in await found.fetchall():
        target = topology.targets.get(destination_id)
        made.setdefault(destination_id, []).append(_made(target, job_id, created_at, request,
                                                         events, tries))  # fmt: skip
    processed = await _processed(conn, tx, ingest_id, partition)
    outcomes = []
    for destination_id in [*routes, *(d for d in made if d not in routes)]:
        target = topology.targets.get(destination_id)
        name = target.name if target else "(deleted destination)"
        jobs = made.get(destination_id, [])
        status, detail = _judged(jobs, processed, routes.get(destination_id), payload)
        outcomes.append(Outcome(destination_id, name, status, detail, jobs))
    return event, outcomes


def _made(
    target: Target | None, job_id: int, created_at: datetime, request: str, events: int, tries: str
) -> Made:
    """A job as it may be shown: the destination's secrets masked in request and answers. A
    deleted destination's secrets are no longer known: its requests and answers, which may
    hold them, are not shown (its errors are, with credentials after Basic/Bearer masked)."""

    def shown(text: str | None) -> str | None:
        return None if text is None or target is None else target.mask(text)

    def error(text: str | None) -> str | None:
        return None if text is None else mask(text, target.secrets if target else ())

    attempts = [
        msgspec.structs.replace(t, error=error(t.error), response=shown(t.response))
        for t in _tries.decode(tries)
    ]
    return Made(job_id, created_at, codec.decode(shown(request) or "null"), events, attempts)


async def _processed(
    conn: psycopg.AsyncConnection[Any], tx: str, ingest_id: int, partition: int
) -> bool:
    cur = await conn.execute(_Q["processed"], {"tx": tx, "id": ingest_id, "partition": partition})
    row = await cur.fetchone()
    return bool(row and row[0])


def _judged(jobs: list[Made], processed: bool, route: Any, payload: Any) -> tuple[str, str]:
    """The status at one destination, and a sentence saying why."""
    if jobs:
        latest = jobs[-1]
        if not latest.tries:
            return "sending", "a job is waiting for its turn or its answer"
        last = latest.tries[-1]
        status = _STATES.get(last.state, last.state)
        detail = {
            "delivered": f"accepted on try {last.attempt}",
            "retrying": f"try {last.attempt} failed ({last.error or last.status}); tries again"
            + (f" at {last.next:%H:%M:%S} UTC" if last.next else ""),
            "failed": f"given up after {last.attempt} tr{'y' if last.attempt == 1 else 'ies'}: "
            f"{last.error or last.status}",
            "replayed": "replayed: see the newer job",
            "discarded": "discarded from the failed list: not sent",
        }.get(status, status)
        return status, detail
    if not processed:
        return "waiting", "not processed yet: the worker has not reached it"
    if route is None:
        return "not sent", "not connected when the event was processed"
    if not route.target.filter.admits(payload):
        return "filtered", "left out by the destination's event filters or the call types it takes"
    if route.transformation_version is not None:
        return "dropped", "the connection's transformation returned nothing for it"
    return "not sent", "nothing was sent: a duplicate of an earlier event, or connected later"
