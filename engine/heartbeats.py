"""Heartbeats: every gateway, worker and web process notes every few seconds that it is alive,
and removes its note when it stops cleanly. A process whose note has not been renewed for a
while has died (or cannot reach the database). The control plane's home page reads them, with
what each process reports about itself (a gateway: its host's spool)."""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from engine import db
from engine.db import Connection, Pool, borrowed
from engine.errors import DatabaseError
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "heartbeats.sql")
EVERY = 10.0  # seconds between beats
ALIVE = timedelta(seconds=3 * EVERY)  # a process not heard from for this long is down
# What a worker reports: it reads the ingest log's `ingest_events` (engine/gateway/log_table.py).
READS_INGEST_EVENTS = "ingest_events"


def this_process() -> dict[str, Any]:
    """This process's key among every host's processes sharing the database."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


Report = dict[str, int]


class Heartbeat:
    """This process's heartbeat as `role`, beating while started, with what `report` says at
    each beat."""

    def __init__(self, pool: Pool, role: str, report: Callable[[], Report] = lambda: {}) -> None:
        self._pool = pool
        self._key = {**this_process(), "role": role}
        self._report = report
        self._started = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        self._soon = asyncio.Event()

    def beat_soon(self) -> None:
        """Beat now rather than at the next interval: what the process reports has changed."""
        self._soon.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self._key['role']}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(DatabaseError):
            async with borrowed(self._pool) as conn:
                await conn.execute(_Q["gone"], self._key)

    async def _run(self) -> None:
        while True:
            self._soon.clear()
            beat = {**self._key, "started_at": self._started, "report": Jsonb(self._report())}
            try:
                async with borrowed(self._pool) as conn:
                    await conn.execute(_Q["beat"], beat)
                    await conn.execute(_Q["forget"])
            except DatabaseError as exc:
                log.debug("heartbeat not recorded: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), EVERY)


@dataclass(frozen=True)
class Beat:
    host: str
    pid: int
    role: str
    started_at: datetime
    seen_at: datetime
    alive: bool
    report: Report


async def recent(conn: Connection) -> list[Beat]:
    """The processes heard from in the last day, each alive or not."""
    return await db.rows(conn, _Q["recent"], {"alive": ALIVE}, Beat)
