"""Group commit into the ingest log.

Requests from every connection hand their rows to one `GroupCommit`. It writes whatever has
arrived with one COPY, which commits on its own (outside any transaction: two round trips),
and only then resolves each request's future: a request is answered 200 only after its rows are
durable. A commit starts as soon as one of its slots is free; while one is being written, what
arrives gathers for the next (for a short window at most, or until a batch is full). An idle
gateway thus commits a request at once, a busy one in ever larger batches.

The processors are woken after the commit, by a notification of its own that the request does
not wait for (`ingest_log.announce`): a NOTIFY inside the commit would hold PostgreSQL's
database-wide notification lock through every commit's WAL flush, one commit after another.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError, DatabaseUnavailable, InvalidRequest, ValueRefused
from engine.gateway.log_table import LogTable
from engine.gateway.spool import Spool
from engine.sql import Queries
from engine.store import ingest_log
from engine.store.ingest_log import Row

_Q = Queries.beside(__file__, "ingest.sql")
log = logging.getLogger(__name__)

_BACKOFF = 1.0
_CONNECTION_WAIT = 2.0
# A commit slower than this is cancelled, and its requests spooled (or answered 503) unless
# PostgreSQL says it was made after all. (Should it not even answer the cancel, it is not known:
# spooled, a second copy would be dropped by the processor, by messageId.)
_COMMIT_DEADLINE = 5.0
# The least time between two notifications of one process: one per commit took a sixth of
# the gateway's Python time in a profile under load (one every 10 ms, still 4-6%), and the
# processors, reading thousands of rows at a time, gain nothing from hearing more often.
_ANNOUNCE_GAP = 0.05
_Waiter = tuple[Sequence[Row], asyncio.Future[None]]


class GroupCommit:
    def __init__(
        self,
        pool: Pool,
        *,
        window: float,
        max_rows: int,
        max_inflight: int,
        log_table: LogTable,
        spool: Spool | None = None,
        observe: Callable[[int, float], None] = lambda rows, seconds: None,
    ) -> None:
        self._pool = pool
        self._log_table = log_table
        self._spool = spool
        self._window = window
        self._max_rows = max_rows
        self._slots = asyncio.Semaphore(max_inflight)
        self._observe = observe
        self._pending: deque[_Waiter] = deque()
        self._pending_rows = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._committed = asyncio.Event()  # set by each commit, cleared by the announcer
        # After a failed commit, requests are answered 503 at once for a moment instead of
        # each waiting for a connection that is not coming; then one commit tries again.
        self._down_until = 0.0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # (each lookup is a getpid() system call)
        self._loop_task = asyncio.create_task(self._run(), name="group-commit")
        self._announcer = asyncio.create_task(self._announce(), name="ingest-announcer")

    async def stop(self) -> None:
        """Commit everything already handed over, then return."""
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._flushes:
            await asyncio.gather(*self._flushes)
        if self._announcer is not None:
            self._announcer.cancel()
            await asyncio.gather(self._announcer, return_exceptions=True)
        if self._committed.is_set():  # the last commits' notification
            await self._announce_once()

    async def append(self, rows: Sequence[Row]) -> None:
        """Return once `rows` are committed; raise DatabaseUnavailable if they are not."""
        if self._closing:
            raise DatabaseUnavailable("the gateway is shutting down")
        if self._spool is None and self._down():
            raise DatabaseUnavailable("the database is unavailable; retry later")
        future = self._loop.create_future()
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        self._wake.set()
        await future

    async def ping(self) -> None:
        """DatabaseUnavailable unless the database answers."""
        try:
            async with db.borrowed(self._pool, timeout=2.0) as conn:
                await conn.execute(_Q["ping"])
        except DatabaseError as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                continue
            if self._flushes and self._pending_rows < self._max_rows and not self._closing:
                # A commit is being written: gather for a moment, as fewer, larger commits cost
                # PostgreSQL far less per row. (With none, waiting would only add latency.)
                await asyncio.sleep(self._window)
            await self._slots.acquire()
            batch = self._take()
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _take(self) -> list[_Waiter]:
        taken: list[_Waiter] = []
        rows = 0
        while self._pending and (rows < self._max_rows or not taken):
            waiter = self._pending.popleft()
            taken.append(waiter)
            rows += len(waiter[0])
        self._pending_rows -= rows
        if not self._pending and not self._closing:
            self._wake.clear()
        return taken

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._slots.release()

    async def _flush(self, batch: list[_Waiter]) -> None:
        started = time.perf_counter()
        if self._spool is not None and (self._spool.holding or self._down()):
            # After events of this process, spooled or not: the database is away (or they
            # would overtake those spooled).
            await self._spill(self._spool, batch)
            return
        deadline = self._loop.time() + _COMMIT_DEADLINE
        try:
            async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
                await self._copy(conn, batch, deadline)  # (outside a transaction: commits itself)
        except ValueRefused:
            # PostgreSQL refused a value (SQLSTATE class 22): that request alone is rejected.
            await self._flush_each(batch)
            return
        except DatabaseError as exc:  # unreachable, read-only, failing: not the rows' fault
            if self._spool is None:
                self._fail(batch, exc)
                return
            log.warning("ingest commit failed, spooling until the database is back: %s", exc)
            self._down_until = time.monotonic() + _BACKOFF
            await self._spill(self._spool, batch)
            return
        except Exception as exc:  # every request in the batch must be answered, whatever failed
            self._fail(batch, exc)
            return
        self._observe(sum(len(rows) for rows, _ in batch), time.perf_counter() - started)
        self._committed.set()
        _settle(batch, None)

    async def _spill(self, spool: Spool, batch: list[_Waiter]) -> None:
        """Into the local spool, written through: then the requests are answered 200."""
        text = ingest_log.copy_text(row for rows, _ in batch for row in rows)
        try:
            kept = await spool.append(text, sum(len(rows) for rows, _ in batch))
        except OSError as exc:
            log.error("cannot write the spool, %d request(s) answered 503: %s", len(batch), exc)
            kept = False
        error = None if kept else DatabaseUnavailable("the database is unavailable; retry later")
        _settle(batch, error)

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    async def _flush_each(self, batch: list[_Waiter]) -> None:
        """One transaction, each request's rows under a savepoint of its own."""
        refused: dict[int, str] = {}
        try:
            async with (
                db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn,
                conn.transaction(),
            ):
                for i, waiter in enumerate(batch):
                    try:
                        with db.translated():
                            async with conn.transaction():
                                await self._copy(conn, [waiter])
                    except ValueRefused as exc:
                        refused[i] = exc.reason
        except Exception as exc:  # every request in the batch must be answered, whatever failed
            self._fail(batch, exc)
            return
        if len(refused) < len(batch):
            self._committed.set()
        for i, waiter in enumerate(batch):
            reason = refused.get(i)
            error = None if reason is None else InvalidRequest(f"the database refused it: {reason}")
            _settle([waiter], error)

    async def _announce(self) -> None:
        """Wake the processors after commits, at most once per `_ANNOUNCE_GAP`: the commits
        made meanwhile fold into the next notification."""
        while True:
            await self._committed.wait()
            if not await self._announce_once():
                await asyncio.sleep(_BACKOFF)
            await asyncio.sleep(_ANNOUNCE_GAP)

    async def _announce_once(self) -> bool:
        self._committed.clear()
        try:
            async with db.borrowed(self._pool, autocommit=True, timeout=_CONNECTION_WAIT) as conn:
                await ingest_log.announce(conn)
        except Exception as exc:  # the processors still look every few seconds
            log.warning("could not wake the processors: %s", _reason(exc))
            return False
        return True

    async def _copy(
        self, conn: db.Connection, batch: list[_Waiter], deadline: float | None = None
    ) -> None:
        rows = (row for rows, _ in batch for row in rows)
        older_readers = self._log_table.older_readers
        await ingest_log.append(conn, rows, older_readers=older_readers, deadline=deadline)

    def _fail(self, batch: list[_Waiter], exc: Exception) -> None:
        """Answer 503: the client keeps the events and retries. Event data stays out of logs."""
        log.error("ingest commit failed, %d request(s) answered 503: %s", len(batch), _reason(exc))
        if isinstance(exc, DatabaseUnavailable):
            self._down_until = time.monotonic() + _BACKOFF
        _settle(batch, DatabaseUnavailable("the database is unavailable; retry later"))


def _reason(exc: Exception) -> str:
    """What failed, for a log line: a database error's text (which never holds event data),
    else only the exception's type."""
    return str(exc) if isinstance(exc, DatabaseError) else type(exc).__name__


def _settle(batch: list[_Waiter], error: Exception | None) -> None:
    for _, future in batch:
        if future.done():  # the client went away; its rows were still written or not
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
