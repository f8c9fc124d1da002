"""Which table of the ingest log the gateway appends to.

`ingest_events` (migration 0021), unless a worker of an earlier version is running on some host:
that one reads `ingest_log` alone, and would move its positions past events stored where it does
not look. So while one is heard from (its heartbeats), the gateway appends to `ingest_log`, which
every version reads; it moves to `ingest_events` at the first look after the last such worker has
stopped (or, killed, has not been heard from for `heartbeats.ALIVE`). Until it has looked once
(at start, or with the database away), it appends to `ingest_log`, readable by all.
"""

import asyncio
import contextlib
import logging

from engine import db, heartbeats
from engine.db import Pool
from engine.errors import DatabaseError
from engine.sql import Queries

_Q = Queries.beside(__file__, "log_table.sql")
log = logging.getLogger(__name__)
_FIRST_LOOK = 2.0  # seconds the start waits for it


class LogTable:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.older_readers = True  # append to `ingest_log`
        self._looked = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._look(), _FIRST_LOOK)
        self._task = asyncio.create_task(self._run(), name="log-table")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(heartbeats.EVERY)
            await self._look()

    async def _look(self) -> None:
        params = {"alive": heartbeats.ALIVE, "mark": heartbeats.READS_INGEST_EVENTS}
        try:
            async with db.borrowed(self._pool, timeout=_FIRST_LOOK) as conn:
                older = bool(await db.value(conn, _Q["older_readers"], params))
        except DatabaseError as exc:
            log.debug("could not look for workers of earlier versions: %s", exc)
            return
        # (Said when it changes, and at the first look only if one runs.)
        if older != (self.older_readers and self._looked):
            log.info("appending to %s: a worker of a version before 0021 is %s",
                     "ingest_log" if older else "ingest_events",
                     "running" if older else "no longer running")  # fmt: skip
        self.older_readers = older
        self._looked = True
