"""The stored events as the control plane shows them: the newest first, in commit order — a walk
back through the ingest log that reads at most `SCAN` events per page, however selective the
filter — and what became of one event at each destination: its jobs, their tries, the request
sent and the answer received, or why there was none (filtered, dropped by a transformation, not
processed yet)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from engine import codec
from engine.db import Connection
from engine.destinations.secrets import mask
from engine.pipeline.topology import Target, load
from engine.position import END, START, Position
from engine.store import ingest_log, jobs
from engine.store.ingest_log import Filters, StoredEvent

SCAN = 20_000  # events a page of a search walks back through at most
_EVERY_EVENT = Filters()


@dataclass(frozen=True)
class Page:
    events: list[StoredEvent]  # newest first
    more: Position | None  # where to walk on from for older ones; None: the log ends here


async def recent(
    conn: Connection,
    filters: Filters = _EVERY_EVENT,
    *,
    before: Position = END,
    after: Position = START,
    limit: int = 50,
    scan: int = SCAN,
) -> Page:
    """The newest events matching `filters` between `after` and `before` (both excluded),
    among the `scan` newest there."""
    events = await ingest_log.newest(conn, filters, before, after, limit, scan)
    if len(events) == limit:
        return Page(events, events[-1].position)
    walk = await ingest_log.walked(conn, filters, before, after, scan)
    walked_all = walk is None or walk.rows < scan  # the walk reached the end of the log
    return Page(events, None if walk is None or walked_all else walk.last)


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
    conn: Connection, at: Position, received_at: datetime | None
) -> tuple[StoredEvent, list[Outcome]] | None:
    """An event and what became of it at each destination connected to its source (and at any
    other that has jobs from it); None when it is not (or no longer) stored. `received_at`,
    when known, spares looking in every day's partition."""
    event = await ingest_log.event(conn, at, received_at)
    if event is None:
        return None
    topology = await load(conn)
    routes = {r.target.id: r for r in topology.routes_of(event.source_id)}
    payload = codec.decode(event.payload)
    bundled = [t.id for t in topology.targets.values() if t.plugin and t.plugin.files]
    made: dict[UUID, list[Made]] = {}
    for job in await jobs.made_of(conn, at, event.received_at, event.partition, bundled):
        target = topology.targets.get(job.destination_id)
        made.setdefault(job.destination_id, []).append(_made(target, job))
    processed = await ingest_log.processed(conn, at, event.partition)
    outcomes = []
    for destination_id in [*routes, *(d for d in made if d not in routes)]:
        target = topology.targets.get(destination_id)
        name = target.name if target else "(deleted destination)"
        its = made.get(destination_id, [])
        status, detail = _judged(its, processed, routes.get(destination_id), payload)
        outcomes.append(Outcome(destination_id, name, status, detail, its))
    return event, outcomes


def _made(target: Target | None, job: jobs.MadeOf) -> Made:
    """A job as it may be shown: the destination's secrets masked in request and answers. A
    deleted destination's secrets are no longer known: its requests and answers, which may
    hold them, are not shown (its errors are, with credentials after Basic/Bearer masked)."""

    def shown(text: str | None) -> str | None:
        return None if text is None or target is None else target.mask(text)

    def error(text: str | None) -> str | None:
        return None if text is None else mask(text, target.secrets if target else ())

    attempts = [
        msgspec.structs.replace(t, error=error(t.error), response=shown(t.response))
        for t in _tries.decode(job.tries)
    ]
    request = codec.decode(target.shown(job.request) if target is not None else "null")
    return Made(job.id, job.created_at, request, job.events, attempts)


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
    if (why := route.target.filter.why(payload)) is not None:
        return "filtered", f"not sent: {why}"
    if route.transformation_version is not None:
        return "dropped", "the connection's transformation returned nothing for it"
    return "not sent", "nothing was sent: a duplicate of an earlier event, or connected later"
