"""The router: each destination delivers its own jobs, with its own concurrency and queue.

A `DestinationRouter` reads its destination's jobs in commit order into per-user lines
(`UserQueues`), sends the heads of the lines with up to `concurrency` requests in flight, and
appends an attempt row for every outcome. A slow or failing destination only ever holds up its
own lines: every destination has its own task, reader and in-flight budget.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple
from uuid import UUID

import msgspec

from engine import db
from engine.db import Pool
from engine.destinations.base import (
    DestinationType,
    Judgement,
    LookupFailed,
    Lookups,
    Request,
    Unsendable,
    Verdict,
    decode_request,
)
from engine.errors import DatabaseError
from engine.pipeline.delivery import batching
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.backlog import Held
from engine.pipeline.delivery.lookups import Asking
from engine.pipeline.delivery.ordering import UserQueues
from engine.pipeline.delivery.sender import Answer, MalformedRequest, Sender, TransportError
from engine.pipeline.topology import Target
from engine.position import START, Position
from engine.store import jobs
from engine.store.jobs import Attempt, Queued, Tried

log = logging.getLogger(__name__)

_POLL = 5.0  # NOTIFY wakes a router when jobs arrive; the poll is the guarantee
_RETRY = 1.0
_READ = 2000
BUFFER = 20_000  # events held in memory per destination
_LOOKED_PAST = 16  # jobs of a line looked at for `behind_since`
_TOO_LARGE = 413
# Characters of a success's answer kept with its attempt, for the event page: a receipt (an
# id, a count) fits; a failure keeps the sender's longer EXCERPT, to diagnose it.
_RECEIPT = 512


class _Stored(msgspec.Struct):
    """A stored request whose body is sent as it was stored, never decoded and encoded again."""

    method: str
    url: str
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    body: msgspec.Raw = msgspec.Raw()  # empty: no body
    body_format: Literal["json", "form"] = "json"


_stored = msgspec.json.Decoder(_Stored)


def stored_body(request: str) -> bytes:
    """The body of a stored request, byte for byte as it was stored."""
    return bytes(_stored.decode(request).body)


@dataclass(slots=True, eq=False)
class Pending:
    id: int
    position: Position
    created_at: datetime
    partition: int
    user_key: str
    source_id: UUID
    request: str
    events: int  # more than one: a bundle (see engine.pipeline.processing.mapping)
    attempts: int
    first_attempt: datetime | None
    received_at: datetime  # (of its first event): deliveries are timed from there
    settled: bool = False
    alone: bool = False  # refused as part of a too-large batch: goes in a request of its own
    key: str | None = batching.UNKNOWN  # its batch key (engine.pipeline.delivery.batching)


class _Settled(NamedTuple):
    """A job read from the table that an earlier run already settled: a position marker."""

    position: Position
    settled: bool = True


@dataclass(frozen=True)
class Result:
    """What one delivery attempt of a job came to."""

    verdict: Verdict
    status: int | None = None
    error: str | None = None
    response: str | None = None
    retry_after: float | None = None
    alone: bool = False  # the batch was refused as a whole: the job goes again on its own
    held: bool = False  # not sent: it waits behind its user's earlier job (no attempt made)


_HELD = Result(Verdict.RETRY, error="waits behind its user's earlier event", held=True)


class DestinationRouter:
    def __init__(
        self,
        target: Target,
        pool: Pool,
        sender: Sender,
        attempts: AttemptLog,
        partitions: Sequence[int],
    ) -> None:
        self.target = target
        self._pool = pool
        self._sender = sender
        self._attempts = attempts
        self._partitions = list(partitions)
        self._queues: UserQueues[Pending] = UserQueues()
        self._lines: dict[int, deque[Pending | _Settled]] = {}  # per partition, read order
        self._cursor: Position = START
        self._floors: dict[int, Position] = {}  # settled positions loaded at start
        self._wake = asyncio.Event()
        self._read_due = True
        self._unread = False  # the last read was cut by its limit: more jobs are waiting
        self._read_limit = _READ  # jobs per read
        self._inflight: set[asyncio.Task[None]] = set()
        self._next_send = 0.0  # rate limit pacing
        self._paused_until = 0.0  # after a 429: the vendor throttles the destination as a whole
        self._stopping = False
        self._lookups: Lookups | None = None
        if target.plugin is not None and target.plugin.resolve is not None:
            self._lookups = Asking(sender, target.policy.timeout_seconds, target.mask)

    def wake(self) -> None:
        self._read_due = True
        self._wake.set()

    async def run(self) -> None:
        while not await self._start():
            await asyncio.sleep(_RETRY)
        next_poll = time.monotonic() + _POLL
        while not self._stopping:
            now = time.monotonic()
            if now >= next_poll:
                self._read_due, next_poll = True, now + _POLL
            if self._read_due and self._pending() < BUFFER:
                await self._read()
            due = self._release(time.monotonic())
            paced = self._dispatch()
            wait = min(x for x in (next_poll, due, paced) if x is not None) - time.monotonic()
            if wait > 0 and not (self._read_due and self._pending() < BUFFER):
                # (`timeout` rather than `wait_for`: no task made for each wait, once per
                # delivery under load)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
            self._wake.clear()

    async def stop(self, grace: float) -> None:
        """Send nothing new; give requests in flight `grace` seconds to be answered."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            _, late = await asyncio.wait(self._inflight, timeout=grace)
            for task in late:  # not settled: sent again after the restart
                task.cancel()

    async def _start(self) -> bool:
        try:
            async with db.borrowed(self._pool) as conn:
                floors = await jobs.router_positions(conn, self.target.id, self._partitions)
        except DatabaseError as exc:
            log.warning("router %s: cannot read positions, retrying: %s", self.target.name, exc)
            return False
        self._floors = floors
        if len(self._floors) == len(self._partitions):
            self._cursor = min(self._floors.values())
        return True

    async def _read(self) -> None:
        try:
            async with db.borrowed(self._pool) as conn:
                rows, tried = await jobs.read(
                    conn, self.target.id, self._cursor, self._partitions, self._read_limit
                )
        except DatabaseError as exc:
            log.warning("router %s: cannot read jobs, retrying: %s", self.target.name, exc)
            await asyncio.sleep(_RETRY)
            return
        self._read_due = self._unread = len(rows) == self._read_limit
        for row in rows:
            self._take_row(row, tried.get(row.id))
        if rows:
            self._cursor = rows[-1].position
            # A partition with nothing outstanding is settled up to the cursor: saying so lets
            # the next start read from there instead of from that partition's last job.
            for partition in self._partitions:
                if not self._lines.get(partition):
                    self._attempts.position((self.target.id, partition), self._cursor)

    def behind_since(self) -> datetime | None:
        """While more of its jobs wait than it has read, and nothing but its own pace holds
        them (no 429 pause, no rate limit): when the oldest job it could send now, never tried
        yet, was received (for engine/pressure.py). None while it keeps up, or waits for its
        vendor (jobs being retried are not counted)."""
        if not self._unread or self.target.policy.rate_limit is not None:
            return None
        if time.monotonic() < self._paused_until:
            return None
        oldest: datetime | None = None
        for line in self._lines.values():
            # (A line is in commit order: its first job never tried is the oldest; jobs being
            # retried, of users of their own, are passed, a few at most.)
            for job in itertools.islice(line, _LOOKED_PAST):
                if isinstance(job, Pending) and not job.settled and job.attempts == 0:
                    if oldest is None or job.received_at < oldest:
                        oldest = job.received_at
                    break
        return oldest

    def held(self) -> Held:
        """What this router holds now: read and not settled yet (for the backlog)."""
        jobs = events = retrying = 0
        oldest: datetime | None = None
        for line in self._lines.values():
            first = True
            for job in line:
                if not isinstance(job, Pending) or job.settled:
                    continue
                jobs, events = jobs + 1, events + job.events
                retrying += job.attempts > 0
                if first:  # a line is in commit order: its first waiting job is its oldest
                    oldest = job.received_at if oldest is None else min(oldest, job.received_at)
                    first = False
        return Held(jobs, events, retrying, oldest, self._cursor if self._unread else None)

    def _take_row(self, row: Queued, tried: Tried | None) -> None:
        position = row.position
        if position <= self._floors.get(row.partition, START):
            return
        line = self._lines.setdefault(row.partition, deque())
        if tried is not None and tried.settled:
            line.append(_Settled(position))
            self._advance(row.partition)
            return
        job = Pending(
            row.id, position, row.created_at, row.partition, row.user_key, row.source_id,
            row.request, row.events, 0, None, row.received_at,
        )  # fmt: skip
        line.append(job)
        not_before = None
        if tried is not None:  # tried before (by an earlier run): its budget resumes
            job.attempts, job.first_attempt = tried.attempts, tried.first_at
            if tried.next_retry_at is not None:
                wait = (tried.next_retry_at - datetime.now(UTC)).total_seconds()
                not_before = time.monotonic() + wait if wait > 0 else None
        self._enqueue(job, not_before)

    # How jobs wait for delivery: in per-user lines, one request per user in flight. (A batch
    # destination's router gathers them into files instead: `engine.pipeline.delivery.files`.)

    def _enqueue(self, job: Pending, not_before: float | None) -> None:
        self._queues.add(job, not_before)

    def _pending(self) -> int:
        return len(self._queues)

    def _release(self, now: float) -> float | None:
        """Make jobs whose wait is over ready; return when the next wait ends, if any."""
        return self._queues.release(now)

    def _later(self, job: Pending, at: float) -> None:
        self._queues.retry(job, at)

    def _finished(self, job: Pending) -> None:
        self._queues.done(job)

    def _dispatch(self) -> float | None:
        """Start as many deliveries as the policy allows; return when pacing allows more."""
        policy, plugin = self.target.policy, self.target.plugin
        batch, together = batching.size(plugin), batching.together(plugin)
        while not self._stopping and len(self._inflight) < policy.concurrency:
            now = time.monotonic()
            if now < self._paused_until:
                return self._paused_until
            if policy.rate_limit is not None and now < self._next_send:
                return self._next_send
            jobs = self._queues.take(batch, together)
            if not jobs:
                return None
            if policy.rate_limit is not None:
                self._next_send = max(now, self._next_send) + len(jobs) / policy.rate_limit
            groups: list[tuple[list[Pending], list[Request] | None]] = [(jobs, None)]
            if batch > 1 and plugin is not None:
                groups = list(batching.batches(plugin, jobs))
            for group in groups:
                task = asyncio.create_task(self._deliver(*group))
                self._inflight.add(task)
                task.add_done_callback(self._delivered)
        return None

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _deliver(self, jobs: list[Pending], requests: list[Request] | None) -> None:
        target = self.target
        try:
            results = await _attempt(self._sender, target, jobs, requests, self._lookups)
        except Exception as exc:  # a bug must not leave jobs in flight forever: retry them
            log.exception("router %s: delivery failed unexpectedly", target.name)
            error = target.mask(f"internal error: {type(exc).__name__}: {exc}")
            results = [Result(Verdict.RETRY, error=error)] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            job.alone = job.alone or result.alone
            self._settle(job, result)

    def _settle(self, job: Pending, result: Result) -> None:
        if result.held:  # not sent: it goes when its user's earlier job is settled
            self._later(job, time.monotonic())
            return
        now = datetime.now(UTC)
        job.attempts += 1
        first = job.first_attempt = job.first_attempt or now
        verdict, error = result.verdict, result.error
        policy = self.target.policy
        if verdict is Verdict.RETRY and policy.exhausted(job.attempts, first, now):
            verdict = Verdict.ABORT
            error = f"{error or f'HTTP {result.status}'}; gave up after {job.attempts} attempts"
        next_retry = None
        if verdict is Verdict.RETRY:
            delay = policy.backoff(job.attempts, result.retry_after)
            next_retry = now + timedelta(seconds=delay)
            self._later(job, time.monotonic() + delay)
            if result.status == 429 and result.retry_after is not None:
                # Told when to come back: nothing more goes until then, for any user.
                pause = min(result.retry_after, policy.max_backoff_seconds)
                self._paused_until = max(self._paused_until, time.monotonic() + pause)
        else:
            self._finished(job)
            job.settled = True
            job.request = ""  # it may wait in its partition's line a while: keep it light
        response = result.response
        if verdict is Verdict.DELIVERED and response is not None:
            response = response[:_RECEIPT]
        row = Attempt(
            job.id, job.created_at, self.target.id, job.attempts, verdict.value,
            result.status, error, response, next_retry,
        )  # fmt: skip
        outcome = "retried" if verdict is Verdict.RETRY else verdict.value
        self._attempts.add(row, job.source_id, outcome, job.events, job.received_at)
        if job.settled:
            self._advance(job.partition)

    def _advance(self, partition: int) -> None:
        line = self._lines[partition]
        last = None
        while line and line[0].settled:
            last = line.popleft().position
        if last is not None:
            self._attempts.position((self.target.id, partition), last)


async def _attempt(
    sender: Sender,
    target: Target,
    jobs: list[Pending],
    requests: list[Request] | None,
    lookups: Lookups | None,
) -> list[Result]:
    """Send the jobs' request (combined, for a batch) and say what the answer means for each;
    requests that need look-ups are completed first, and a job whose look-up failed is settled
    without being sent."""
    plugin = target.plugin
    if plugin is None or target.problem is not None:
        return [Result(Verdict.ABORT, error=target.problem or "no destination plug-in")] * len(jobs)
    if plugin.resolve is None or lookups is None:
        return await _send(sender, target, jobs, requests)
    if requests is None:
        requests = [decode_request(job.request) for job in jobs]
    outcomes = await asyncio.gather(*(_resolved(target, r, lookups) for r in requests))
    settled = {id(job): o for job, o in zip(jobs, outcomes, strict=True) if isinstance(o, Result)}
    completed = [(job, o) for job, o in zip(jobs, outcomes, strict=True) if isinstance(o, Request)]
    # Completed requests may no longer share a request (HubSpot: a create and an update): a
    # user's requests then go one after another, and a job whose user has an earlier job not
    # delivered waits for it: no event overtakes an earlier one of its user.
    for wave in _waves(batching.regrouped(plugin, completed)):
        ready = []
        for grouped, made in wave:
            kept = [(job, r) for job, r in zip(grouped, made, strict=True)
                    if not _behind(job, jobs, settled)]  # fmt: skip
            settled.update((id(job), _HELD) for job in grouped if _behind(job, jobs, settled))
            if kept:
                ready.append(([job for job, _ in kept], [r for _, r in kept]))
        sent = await asyncio.gather(*(_send(sender, target, *g) for g in ready),
                                    return_exceptions=True)  # fmt: skip
        for (grouped, _), results in zip(ready, sent, strict=True):
            if isinstance(results, BaseException):  # one request's bug: its jobs only retried
                results = _failed(target, results, len(grouped))
            settled.update((id(job), result) for job, result in zip(grouped, results, strict=True))
    return [settled[id(job)] for job in jobs]


def _waves(
    groups: list[tuple[list[Pending], list[Request]]],
) -> list[list[tuple[list[Pending], list[Request]]]]:
    """Requests in the order of their first jobs, in waves sent at once: no user in two
    requests of a wave."""
    waves: list[list[tuple[list[Pending], list[Request]]]] = []
    users: list[set[str]] = []
    for group in sorted(groups, key=lambda g: g[0][0].position):
        mine = {job.user_key for job in group[0]}
        if not waves or users[-1] & mine:
            waves.append([])
            users.append(set())
        waves[-1].append(group)
        users[-1] |= mine
    return waves


def _behind(job: Pending, jobs: list[Pending], settled: dict[int, Result]) -> bool:
    """Whether an earlier job of the job's user, in the same take, is not delivered."""
    return any(
        other.user_key == job.user_key
        and other.position < job.position
        and (found := settled.get(id(other))) is not None
        and found.verdict is not Verdict.DELIVERED
        for other in jobs
    )


def _failed(target: Target, exc: BaseException, count: int) -> list[Result]:
    """A delivery that raised (a bug): its jobs are tried again, the error said."""
    if isinstance(exc, asyncio.CancelledError):
        raise exc
    log.error("router %s: delivery failed unexpectedly", target.name, exc_info=exc)
    error = target.mask(f"internal error: {type(exc).__name__}: {exc}")
    return [Result(Verdict.RETRY, error=error)] * count


async def _resolved(target: Target, request: Request, lookups: Lookups) -> Request | Result:
    """The request completed with the vendor's answers, or the job's result when it cannot be."""
    assert target.plugin is not None and target.plugin.resolve is not None
    try:
        return await target.plugin.resolve(request, target.settings, lookups)
    except LookupFailed as exc:
        return Result(Verdict.RETRY, error=target.mask(str(exc)))
    except Unsendable as exc:
        return Result(Verdict.ABORT, error=target.mask(str(exc)))


async def _send(
    sender: Sender, target: Target, jobs: list[Pending], requests: list[Request] | None
) -> list[Result]:
    """Send the jobs' request (combined, for a batch) and say what the answer means for each."""
    plugin = target.plugin
    assert plugin is not None
    try:
        if requests is None:
            stored = _stored.decode(jobs[0].request)
            request = Request(stored.method, stored.url, stored.headers, stored.params,
                              stored.body if len(stored.body) else None,
                              stored.body_format)  # fmt: skip
        else:
            request = batching.outgoing(plugin, requests)
        answer: Answer = await sender.send(request, target.policy.timeout_seconds)
    except TransportError as exc:
        return [Result(Verdict.RETRY, error=target.mask(str(exc)))] * len(jobs)
    except MalformedRequest as exc:
        return [Result(Verdict.ABORT, error=target.mask(str(exc)))] * len(jobs)
    if requests is None:  # (the stored request, sent as it was: decoded for `classify_sent`)
        requests = [decode_request(jobs[0].request) if plugin.classify_sent else request]
    judged = plugin.judge(answer.status, answer.body, requests)
    response = target.mask(answer.excerpt) if answer.excerpt is not None else None
    if len(jobs) > 1 and _split(plugin, answer.status, _whole(judged)):
        # Refused as a whole, no event named: each goes again in a request of its own, where
        # the vendor's answer is its own.
        split = f"HTTP {answer.status}: the batch was refused; sent again event by event"
        return [Result(Verdict.RETRY, answer.status, split, response, alone=True)] * len(jobs)
    if answer.status == _TOO_LARGE and judged is not Verdict.DELIVERED:
        judged = Verdict.ABORT  # one event alone is too large: it never fits
    if isinstance(judged, Verdict) or len(judged) != len(jobs):
        verdict = judged if isinstance(judged, Verdict) else Verdict.RETRY
        error = None if verdict is Verdict.DELIVERED else f"HTTP {answer.status}"
        return [Result(verdict, answer.status, error, response, answer.retry_after)] * len(jobs)
    return [_judged(j, answer, response, target) for j in judged]


def _whole(judged: Verdict | Sequence[Judgement]) -> Verdict | None:
    """The verdict on a whole batch: given as one, or the same for each of its events (None:
    they differ)."""
    if isinstance(judged, Verdict):
        return judged
    verdicts = {j.verdict for j in judged}
    return verdicts.pop() if len(verdicts) == 1 else None


def _split(plugin: DestinationType, status: int, verdict: Verdict | None) -> bool:
    """Whether a batch refused as a whole goes again event by event: too large, or refused for
    good at a status where one bad event refuses the batch (the plug-in's `split_on`)."""
    if status == _TOO_LARGE:  # (whatever the plug-in made of it, event by event)
        return verdict is not Verdict.DELIVERED
    return status in plugin.split_on and verdict is Verdict.ABORT


def _judged(j: Judgement, answer: Answer, response: str | None, target: Target) -> Result:
    """One event's result in a batch the vendor took in part: its verdict and the reason."""
    error = None
    if j.verdict is not Verdict.DELIVERED:
        error = f"HTTP {answer.status}" + (f": {target.mask(j.reason)}" if j.reason else "")
    return Result(j.verdict, answer.status, error, response, answer.retry_after)
