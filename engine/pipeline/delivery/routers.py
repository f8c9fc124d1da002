"""All of a worker's routers: one per enabled destination, following workspace changes.

A destination that stores files (S3) gets a `FileRouter`, any other a `DestinationRouter`. The
routers run between `open` and `stop`, on the partitions given at `open`: a delivery shift's.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from engine.db import Pool
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.backlog import Held
from engine.pipeline.delivery.files import FileRouter
from engine.pipeline.delivery.router import DestinationRouter
from engine.pipeline.delivery.sender import Sender
from engine.pipeline.topology import Target, Topology

log = logging.getLogger(__name__)


class Routers:
    """One `DestinationRouter` per enabled destination, following workspace changes."""

    def __init__(
        self, pool: Pool, sender: Sender, attempts: AttemptLog, data_dir: Path | None = None
    ) -> None:
        self._pool = pool
        self._data_dir = data_dir
        self._sender = sender
        self._attempts = attempts
        self.partitions: list[int] = []
        self._routers: dict[UUID, tuple[DestinationRouter, asyncio.Task[None]]] = {}
        self._retiring: dict[UUID, asyncio.Task[None]] = {}
        self.broken = asyncio.Event()  # a destination's router ended with an error
        self.closed = True  # routers run only between `open()` and `stop()`

    def sync(self, topology: Topology) -> None:
        """Start routers for new or re-enabled destinations, stop those gone or disabled."""
        if self.closed:
            return
        wanted = {t.id: t for t in topology.targets.values() if t.enabled}
        for dest_id in list(self._routers):
            if dest_id not in wanted:
                router, task = self._routers.pop(dest_id)
                retiring = asyncio.create_task(self._retire(router, task))
                self._retiring[dest_id] = retiring
                retiring.add_done_callback(functools.partial(self._retired, dest_id))
        for dest_id, target in wanted.items():
            if dest_id in self._routers:
                self._routers[dest_id][0].target = target  # new settings apply to new sends
                continue
            if dest_id in self._retiring:
                continue  # its old router is finishing; the next sync starts a fresh one
            router = self._router(target)
            task = asyncio.create_task(router.run(), name=f"router-{target.name}")
            task.add_done_callback(self._ended)
            self._routers[dest_id] = (router, task)

    def _router(self, target: Target) -> DestinationRouter:
        if target.plugin and target.plugin.files:
            return FileRouter(target, self._pool, self._sender, self._attempts, self.partitions,
                              self._data_dir)  # fmt: skip
        return DestinationRouter(target, self._pool, self._sender, self._attempts, self.partitions)

    def _retired(self, dest_id: UUID, task: asyncio.Task[None]) -> None:
        self._retiring.pop(dest_id, None)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("%s failed", task.get_name(), exc_info=task.exception())
            self.broken.set()

    def open(self, topology: Topology, partitions: Sequence[int]) -> None:
        """Start delivering on `partitions` (after `stop`, if they ran before)."""
        self.partitions = list(partitions)
        self.broken.clear()
        self.closed = False
        self.sync(topology)

    def wake(self, destinations: set[UUID] | None = None) -> None:
        for dest_id, (router, _) in self._routers.items():
            if destinations is None or dest_id in destinations:
                router.wake()

    def held(self) -> dict[UUID, Held]:
        """What each running router holds (none while this worker does not deliver)."""
        return {dest_id: router.held() for dest_id, (router, _) in self._routers.items()}

    def behind_since(self) -> datetime | None:
        """The oldest of the routers' `behind_since`: None while none is behind on its own."""
        found = [when for router, _ in self._routers.values()
                 if (when := router.behind_since()) is not None]  # fmt: skip
        return min(found, default=None)

    def delivering(self) -> list[int]:
        """The partitions delivered now (none while stopped)."""
        return [] if self.closed else self.partitions

    async def stop(self, grace: float) -> None:
        """Stop every router; return once all are stopped, whoever else is stopping them."""
        self.closed = True
        routers, self._routers = self._routers, {}
        for dest_id, (router, task) in routers.items():
            retiring = asyncio.create_task(self._retire(router, task, grace))
            self._retiring[dest_id] = retiring
            retiring.add_done_callback(functools.partial(self._retired, dest_id))
        await asyncio.gather(*self._retiring.values())

    async def _retire(
        self, router: DestinationRouter, task: asyncio.Task[None], grace: float = 10.0
    ) -> None:
        await router.stop(grace)
        task.cancel()
        # A router that failed has said why (`_ended`); stopping the others must go on.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
