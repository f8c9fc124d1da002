"""Messages the gateway refused, written apart from the requests: gathered in memory and
stored once a second (`store.rejections`), with the source's `rejected` count in the per-minute
stats. At most `_PENDING` wait per process; beyond that only the count is kept, so a flood of
refusals costs the database one small write a second."""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from uuid import UUID

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError
from engine.store import counters, rejections
from engine.store.counters import NO_DESTINATION
from engine.store.rejections import Rejection

log = logging.getLogger(__name__)

_EVERY = 1.0
_PENDING = 1000
_CONNECTION_WAIT = 2.0


class RejectionLog:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._pending: list[Rejection] = []
        self._counts: Counter[str] = Counter()  # per source id, kept or not
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-rejections")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._write()

    def add(self, refused: Sequence[Rejection]) -> None:
        for rejection in refused:
            self._counts[rejection.source_id] += 1
        room = _PENDING - len(self._pending)
        self._pending.extend(refused[:room])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_EVERY)
            await self._write()

    async def _write(self) -> None:
        """Store what waits; it is let go of only once stored (a stop in the middle keeps it
        for the last try)."""
        if not self._counts:
            return
        pending, counts = list(self._pending), Counter(self._counts)
        tally = counters.Counts(
            {(UUID(source), NO_DESTINATION, "rejected"): n for source, n in counts.items()}
        )
        try:
            async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
                await rejections.append(conn, pending)
                await counters.add(conn, tally)
        except DatabaseError as exc:  # kept for the next try
            log.warning("could not store %d refused message(s), will retry: %s", len(pending), exc)
            return
        del self._pending[: len(pending)]
        self._counts -= counts
