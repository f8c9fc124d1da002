"""Pacing: the gateway holds its answers back a moment while the pipeline on its host falls
further behind (engine/pressure.py), so that what it accepts can also be delivered.

The pause comes after the commit, before the answer: an event is durable as soon as it would
be without pacing, and no request is refused. Clients that wait for an answer before sending
again (every batching SDK, a closed loop of connections) send less; the CPU the gateway and
PostgreSQL no longer spend taking events in goes to the pipeline. Every half second the pause
doubles while a stage on the host says more than `TARGET` as it falls further behind (the
processing stage says 1, the delivery stage the share of the time it waits for a CPU): 20 ms
to begin with, `most` at the most. It stays while a stage says less, and shrinks by a fifth
once none says anything: intake settles about where delivery keeps up.
"""

import asyncio
import logging
from collections.abc import Callable

from engine.db import Pool, borrowed
from engine.errors import DatabaseError
from engine.pressure import EVERY, on_this_host

log = logging.getLogger(__name__)
TARGET = 0.10  # what a stage falling behind may say (a share of the time waited for a CPU)
FIRST = 0.02  # seconds: the first pause (5 ms let twice as much pile up before it bit)
GROW = 2.0
SHRINK = 0.8


class Pacing:
    def __init__(self, pool: Pool, most: float, observe: Callable[[float], None]) -> None:
        self._pool = pool
        self._most = most  # seconds; 0: never paced
        self._observe = observe
        self.pause = 0.0  # seconds each answer waits now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._most > 0:
            self._task = asyncio.create_task(self._run(), name="pacing")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.pause = 0.0
        self._observe(0.0)

    async def wait(self) -> None:
        """The pause, if there is one now."""
        if self.pause:
            await asyncio.sleep(self.pause)

    def adjust(self, level: float) -> None:
        """The next pause, after the pipeline said `level`."""
        before = self.pause
        if level > TARGET:
            self.pause = min(self._most, max(FIRST, self.pause * GROW))
        elif level == 0:
            self.pause = self.pause * SHRINK if self.pause * SHRINK >= FIRST / 2 else 0.0
        if self.pause and not before:
            log.info("answers paced: the pipeline on this host falls behind and waits for a "
                     "CPU %.0f%% of the time", level * 100)  # fmt: skip
        elif before and not self.pause:
            log.info("answers no longer paced")
        self._observe(self.pause)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            try:
                async with borrowed(self._pool, timeout=EVERY) as conn:
                    level = await on_this_host(conn)
            except DatabaseError:
                level = 0.0  # (the database away or busy: the pause goes)
            except Exception:  # (never a pause stuck where it was: the task outlives surprises)
                log.exception("pacing: reading the pipeline's pressure failed")
                level = 0.0
            self.adjust(level)
