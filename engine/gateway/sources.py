"""The gateway's view of the sources: write key → source, kept in memory.

The table is reloaded whenever the workspace changes (LISTEN/NOTIFY, a hint) and every
`refresh` seconds regardless (the guarantee). A write key not in memory is answered only after
a reload that started after the request came: a source created a moment ago works at once, and
a key that exists is never refused (SDKs drop their events on a 401). Requests missing at the
same time share reloads, one at a time and at least `_MISS_RELOAD_GAP` apart, so a flood of bad
keys costs at most a few cheap queries a second per gateway process; when a reload fails, every
request waiting for it is answered 503 at once.
"""

import asyncio
import contextlib
import logging
import time
from typing import NamedTuple

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError, DatabaseUnavailable
from engine.listener import Listener
from engine.sql import Queries

_Q = Queries.beside(__file__, "sources.sql")
log = logging.getLogger(__name__)

_CONNECTION_WAIT = 2.0
_MISS_RELOAD_GAP = 0.05  # a request for an unknown key waits this long at most for its reload
_RETRY = 1.0


class Source(NamedTuple):
    id: str
    name: str
    write_key: str
    enabled: bool
    rate_limit: int | None


class SourceDirectory:
    def __init__(self, pool: Pool, url: str, refresh: float = 10.0) -> None:
        self._pool = pool
        self._url = url
        self._refresh = refresh
        self._by_key: dict[str, Source] = {}
        self._loaded_at = -1.0  # when the reload that `_by_key` comes from started
        self._failed_at = -1.0  # when the last reload that failed started
        self._failing = False
        self._reload_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        with contextlib.suppress(DatabaseUnavailable):
            await self.reload()
        listener = Listener(self._url, {"sluice_workspace": self._changed.set})
        self._tasks = [
            asyncio.create_task(listener.run(), name="source-directory-listener"),
            asyncio.create_task(self._follow(), name="source-directory"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def find(self, write_key: str) -> Source | None:
        """The source of a write key; None only if a reload started after the call has not
        found it. DatabaseUnavailable when that cannot be known now: a 503 (retry), never a
        401 (drop)."""
        source = self._by_key.get(write_key)
        if source is not None:
            return source
        asked_at = time.monotonic()
        while self._loaded_at <= asked_at:
            async with self._reload_lock:  # a reload in flight may have started too early
                if self._failed_at > asked_at:  # the reload this request waited for failed
                    raise DatabaseUnavailable("cannot read sources; retry later")
                if self._loaded_at <= asked_at:
                    await asyncio.sleep(self._loaded_at + _MISS_RELOAD_GAP - time.monotonic())
                    await self.reload()
        return self._by_key.get(write_key)

    async def reload(self) -> None:
        started = time.monotonic()
        try:
            async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
                sources = await db.tuples(conn, _Q["all_sources"], None, Source)
        except DatabaseError as exc:
            self._failing = True
            self._failed_at = max(self._failed_at, started)
            raise DatabaseUnavailable(f"cannot read sources: {exc}") from exc
        if started > self._loaded_at:  # (the periodic reload may finish after a later one)
            self._by_key = {source.write_key: source for source in sources}
            self._loaded_at = started
        self._failing = False

    async def _follow(self) -> None:
        """Reload on every workspace change (the listener also says so when it reconnects:
        changes may have been missed), and every `refresh` seconds regardless — every second
        while the last reload failed (a disabled source must not stay open longer)."""
        while True:
            wait = min(_RETRY, self._refresh) if self._failing else self._refresh
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
            self._changed.clear()
            try:
                await self.reload()
            except DatabaseUnavailable as exc:
                log.warning("source directory cannot reload, will retry: %s", exc)
