"""The gateway's view of the sources: write key → source, kept in memory.

The table is reloaded whenever the workspace changes (LISTEN/NOTIFY, a hint) and every
`refresh` seconds regardless (the guarantee). A write key not in memory triggers one reload,
at most once per second, so a source created a moment ago works at once while a flood of bad
keys costs the database almost nothing.
"""

import asyncio
import contextlib
import logging
import time
from typing import NamedTuple

import psycopg
from psycopg_pool import AsyncConnectionPool

from engine.errors import DatabaseUnavailable
from engine.sql import Queries

_Q = Queries.beside(__file__, "sources.sql")
log = logging.getLogger(__name__)

_MISS_RELOAD_INTERVAL = 1.0
_CONNECTION_WAIT = 2.0


class Source(NamedTuple):
    id: str
    name: str
    write_key: str
    enabled: bool
    rate_limit: int | None


class SourceDirectory:
    def __init__(self, pool: AsyncConnectionPool, url: str, refresh: float = 10.0) -> None:
        self._pool = pool
        self._url = url
        self._refresh = refresh
        self._by_key: dict[str, Source] = {}
        self._tried_at = -_MISS_RELOAD_INTERVAL  # the last reload attempt, successful or not
        self._failing = False
        self._reload_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(DatabaseUnavailable):
            await self.reload()
        self._watcher = asyncio.create_task(self._watch(), name="source-directory")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def find(self, write_key: str) -> Source | None:
        source = self._by_key.get(write_key)
        if source is not None:
            return source
        async with self._reload_lock:
            if time.monotonic() - self._tried_at >= _MISS_RELOAD_INTERVAL:
                await self.reload()
            elif self._failing:
                # Whether this key exists cannot be known now: 503 (retry), never 401 (drop).
                raise DatabaseUnavailable("cannot read sources; retry later")
        return self._by_key.get(write_key)

    async def reload(self) -> None:
        self._tried_at = time.monotonic()
        try:
            async with self._pool.connection(timeout=_CONNECTION_WAIT) as conn:
                cur = await conn.execute(_Q["all_sources"])
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            self._failing = True
            raise DatabaseUnavailable(f"cannot read sources: {exc}") from exc
        self._by_key = {row[2]: Source(*row) for row in rows}
        self._failing = False

    async def _watch(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(_Q["listen"])
                    await self.reload()
                    while True:
                        async for _ in conn.notifies(timeout=self._refresh, stop_after=1):
                            pass
                        await self.reload()
            except (psycopg.Error, DatabaseUnavailable) as exc:
                log.warning("source directory lost the database, retrying: %s", exc)
                await asyncio.sleep(1.0)
