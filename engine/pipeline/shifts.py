"""Shifts: a stage's work on the partitions a worker leases, started again whenever they change.

`LeasedStage` renews the worker's leases every few seconds (`engine.pipeline.leases`). When
the partitions it should work on change — a worker joined or left, a lease expired — it stops
the running shift (which finishes what it has in hand), gives up the leases it no longer keeps,
and starts a shift on the new set. When the database cannot be reached long enough that the
leases could expire, it stops the shift: another worker may take the partitions over, and two
must never work one at once.
"""

import asyncio
import contextlib
import logging
from typing import Protocol

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError
from engine.partitions import spans
from engine.pipeline.leases import Leases

log = logging.getLogger(__name__)


class Shift(Protocol):
    """Work on a fixed set of partitions: runs until stopped (or until it fails)."""

    async def run(self) -> None: ...

    async def stop(self) -> None:
        """Finish what is in hand; `run` returns once it has."""


class Shifts(Protocol):
    """A stage's work: a shift on each set of partitions the worker leases."""

    def begin(self, partitions: list[int]) -> Shift: ...


class LeasedStage:
    def __init__(self, pool: Pool, leases: Leases, shifts: Shifts) -> None:
        self._pool = pool
        self.leases = leases
        self._shifts = shifts
        self.working: frozenset[int] = frozenset()
        self._shift: Shift | None = None
        self._task: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, or a shift fails (raised here); then every lease goes."""
        try:
            while not stop.is_set():
                target = await self._renew()
                if self._task is not None and self._task.done():
                    error = None if self._task.cancelled() else self._task.exception()
                    if error is not None:
                        raise error  # the worker fails, for its supervisor to start it afresh
                    self.working = frozenset()  # it ended on its own (a lease lost): again
                if stop.is_set():
                    break
                if target != self.working:
                    target = await self._change(target)
                await self._release(self.leases.held - self.working)  # (one that failed before)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.leases.every)
        finally:
            try:
                await self._end()
            finally:
                with contextlib.suppress(DatabaseError):
                    async with db.borrowed(self._pool) as conn:
                        await self.leases.leave(conn)

    async def _renew(self) -> frozenset[int]:
        try:
            async with db.borrowed(self._pool) as conn:
                # (bounded: a database that stopped answering must not stall the deadline)
                return await asyncio.wait_for(self.leases.renew(conn), self.leases.every)
        except (DatabaseError, TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, DatabaseError) else "no answer"
            if self.leases.fresh():
                log.warning("%s leases not renewed, will try again: %s", self.leases.stage, reason)
                return self.working
            if self.working:
                log.warning("%s: leases may have expired (%s): stopping work on partitions %s",
                            self.leases.stage, reason, spans(self.working))  # fmt: skip
            return frozenset()

    async def _change(self, target: frozenset[int]) -> frozenset[int]:
        """Stop the shift, give up what is no longer kept, start one on what is (renewing
        meanwhile, and again after: stopping can take the grace period). Returns its set."""
        await self._end()
        await self._release(self.leases.held - target)
        if target:
            target = await self._renew() & target  # (what was lost meanwhile is not started)
        self.working = target
        log.info("%s: working on %d partition(s): %s", self.leases.stage, len(target),
                 spans(target) or "none")  # fmt: skip
        if target:
            self._shift = self._shifts.begin(sorted(target))
            self._task = asyncio.create_task(self._shift.run(), name=f"{self.leases.stage}-shift")
        return target

    async def _release(self, partitions: frozenset[int]) -> None:
        if partitions:
            with contextlib.suppress(DatabaseError):
                async with db.borrowed(self._pool) as conn:
                    await self.leases.release(conn, set(partitions))

    async def _end(self) -> None:
        """Stop the shift (it finishes what it has in hand), renewing the leases meanwhile."""
        if self._shift is not None and self._task is not None:
            stopping = asyncio.create_task(self._shift.stop())
            while not stopping.done():
                await asyncio.wait([stopping], timeout=self.leases.every)
                if not stopping.done():
                    await self._renew()
            await stopping
            await asyncio.wait([self._task])
            if not self._task.cancelled():
                self._task.exception()  # (a failure was seen by `run`, or does not matter now)
        self._shift = self._task = None
        self.working = frozenset()
