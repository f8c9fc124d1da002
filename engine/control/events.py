"""The stored events as the control plane shows them: the newest first, in commit order — a walk
back through the ingest log that reads at most `SCAN` events per page, however selective the
filter — and what became of one event at each destination: its jobs, their tries, the request
sent and the answer received, or why there was none (filtered, dropped by a transformation, not
processed yet)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from engine import codec
from engine.db import Connection
from engine.destinations.secrets import mask
from engine.pipeline.topology import Route, Target, Topology, load
from engine.position import END, START, Position
from engine.store import ingest_log, jobs
from engine.store.ingest_log import Filters as Filters  # (re-exported: the pages filter with it)
from engine.store.ingest_log import StoredEvent

SCAN = 20_000  # events a page of a search walks back through at most
_EVERY_EVENT = Filters()


@dataclass(frozen=True)
class Page:
    events: list[StoredEvent]  # newest first
    more: Position | None  # where to walk on from for older ones; None: the log ends here
    # When none matched: how many events the walk went through, and when the oldest of them
    # was received (0 and None: there was none to go through).
    searched: int = 0
    back_to: datetime | None = None


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
    if walk is None:
        return Page(events, None)
    walked_all = walk.rows < scan  # the walk reached the end of the log
    return Page(events, None if walked_all else walk.last, walk.rows, walk.received_at)


_PATH = re.compile(r"[A-Za-z_$][\w$-]*(?:\.[\w$-]+)*")


def search(text: str) -> Filters:
    """What a search box's text looks for: `properties.plan=pro`, a value at a path in the
    payload; anything else, a messageId or text anywhere in the payload."""
    key, equals, value = text.partition("=")
    if equals and _PATH.fullmatch(key.strip()):
        return Filters(path=tuple(key.strip().split(".")), value=value.strip())
    return Filters(text=text)


class Try(msgspec.Struct, frozen=True):
    attempt: int
    state: str  # delivered, retry, aborted, replayed, discarded
    at: datetime
    status: int | None = None
    error: str | None = None
    response: str | None = None
    next: datetime | None = None

    @property
    def sent(self) -> bool:
        """A request went out (or was tried): not a settlement (replayed, discarded)."""
        return self.state in ("delivered", "retry", "aborted")

    @property
    def wait(self) -> float | None:
        """Seconds from this try to the next one, when another was due."""
        return None if self.next is None else max(0.0, (self.next - self.at).total_seconds())


@dataclass(frozen=True)
class Made:
    """A job made from the event: one request (or a file of many events), and its tries."""

    job_id: int
    created_at: datetime
    request: Any  # as sent, secrets masked; None when not made or not shown
    events: int
    tries: list[Try]  # the request's tries, oldest first
    settled: Try | None  # after the last try: replayed (a newer job) or discarded
    unsent: str | None  # no request was made: why (the transformation's or mapping's refusal)
    hidden: bool  # the destination is deleted: its request and answers are not shown


@dataclass(frozen=True)
class Outcome:
    destination_id: UUID
    destination: str
    # delivered, retrying, failed, replayed, discarded, sending (a job, no answer yet),
    # filtered, dropped (by a transformation), waiting (not processed yet), not sent
    status: str
    detail: str
    jobs: list[Made]
    transformation: tuple[UUID, int] | None = None  # the connection's (id, version), if any

    @property
    def replayable(self) -> list[int]:
        """The ids of its failed jobs (the latest given up on), which a replay sends again; none
        at a deleted destination."""
        failed = self.status == "failed" and not self.jobs[-1].hidden
        return [self.jobs[-1].job_id] if failed else []


# The statuses that change by themselves (the worker's or the router's next step).
UNSETTLED = frozenset({"waiting", "sending", "retrying"})
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
    # Read before the jobs: the processor commits them with its position, so once the position
    # is past the event its jobs are there to see (read after, a commit in between would make
    # the event look processed without jobs: "not sent").
    processed = await ingest_log.processed(conn, at, event.partition)
    made: dict[UUID, list[Made]] = {}
    for job in await jobs.made_of(conn, at, event.received_at, event.partition, _bundled(topology)):
        target = topology.targets.get(job.destination_id)
        made.setdefault(job.destination_id, []).append(_made(target, job))
    return event, _outcomes(topology, event, made, processed)


def _bundled(topology: Topology) -> list[UUID]:
    """The destinations given files: a job of theirs holds many events (`member_ids`)."""
    return [t.id for t in topology.targets.values() if t.plugin and t.plugin.files]


def _outcomes(
    topology: Topology, event: StoredEvent, made: dict[UUID, list[Made]], processed: bool
) -> list[Outcome]:
    """What became of the event at each destination connected to its source, and at any other
    that has jobs from it (`made`, oldest first)."""
    routes = {r.target.id: r for r in topology.routes_of(event.source_id)}
    payload = codec.decode(event.payload)
    outcomes = []
    for destination_id in [*routes, *(d for d in made if d not in routes)]:
        target = topology.targets.get(destination_id)
        name = target.name if target else "(deleted destination)"
        its = made.get(destination_id, [])
        status, detail = _judged(its, processed, routes.get(destination_id), payload)
        outcomes.append(Outcome(destination_id, name, status, detail, its,
                                _transformation(routes.get(destination_id))))  # fmt: skip
    return outcomes


def _transformation(route: Route | None) -> tuple[UUID, int] | None:
    """The transformation (id, version) a connection runs before the mapping, if any."""
    if route is None or route.transformation_id is None or route.transformation_version is None:
        return None
    return route.transformation_id, route.transformation_version


async def stored(
    conn: Connection, at: Position, received_at: datetime | None = None
) -> StoredEvent | None:
    """The event at a position, if still kept (`received_at`, when known, spares looking in
    every day's partition of the log): one to test a transformation on."""
    return await ingest_log.event(conn, at, received_at)


async def listed(conn: Connection, positions: Sequence[Position]) -> list[StoredEvent]:
    """The events still kept at these positions, in their order: rows a page shows, to update
    their `statuses`."""
    return await ingest_log.listed(conn, positions)


async def statuses(conn: Connection, shown: list[StoredEvent]) -> dict[int, list[Outcome]]:
    """What became of each of a page of events (by row id), judged as `trace` judges one, from
    three queries for the whole page: its newest job at each destination with that job's
    tries, how far the processor has read, and the topology. (The outcomes' jobs hold that one
    job, without its request or answers.)"""
    if not shown:
        return {}
    topology = await load(conn)
    # Read before the jobs, which the processor commits with its position: an event it has
    # read past then has its jobs there to see.
    read = await ingest_log.processor_positions(conn)
    made: dict[int, dict[UUID, list[Made]]] = {}
    page = [(e.position, e.partition, e.received_at) for e in shown]
    for event_id, found in await jobs.newest_made_of_each(conn, page, _bundled(topology)):
        target = topology.targets.get(found.destination_id)
        made.setdefault(event_id, {})[found.destination_id] = [_made(target, found)]
    return {
        e.id: _outcomes(topology, e, made.get(e.id, {}), e.position <= read.get(e.partition, START))
        for e in shown
    }


def _made(target: Target | None, job: jobs.MadeOf) -> Made:
    """A job as it may be shown: the destination's secrets masked in request and answers. A
    deleted destination's secrets are no longer known: its requests and answers, which may
    hold them, are not shown (its errors are, with credentials after Basic/Bearer masked)."""

    def shown(text: str | None) -> str | None:
        return None if text is None or target is None else target.mask_text(text)

    def error(text: str | None) -> str | None:
        return None if text is None else target.mask_text(text) if target else mask(text, ())

    attempts = [
        msgspec.structs.replace(t, error=error(t.error), response=shown(t.response))
        for t in _tries.decode(job.tries)
    ]
    tries = [t for t in attempts if t.sent]
    settled = next((t for t in attempts if not t.sent), None)
    if job.request == "null":  # failed before it could be sent: its one attempt says why
        why = tries[0].error if tries else None
        return Made(job.id, job.created_at, None, job.events, [], settled,
                    why or "the job was made without a request", target is None)  # fmt: skip
    request = codec.decode(target.shown(job.request)) if target is not None else None
    return Made(job.id, job.created_at, request, job.events, tries, settled, None, target is None)


def _unsent(job: Made) -> tuple[str, str]:
    """The status of a job that was never sent, and why."""
    if job.settled is not None:
        return _STATES[job.settled.state], f"{job.settled.state}: no request had been made"
    return "failed", f"no request was made: {job.unsent}"


def _judged(jobs: list[Made], processed: bool, route: Any, payload: Any) -> tuple[str, str]:
    """The status at one destination, and a sentence saying why."""
    if jobs:
        latest = jobs[-1]
        if latest.unsent is not None:
            return _unsent(latest)
        if not latest.tries:
            return "sending", "a job is waiting for its turn or its answer"
        last = latest.settled or latest.tries[-1]
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
