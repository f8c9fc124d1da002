"""A warehouse's own client that blocks (Snowflake's, Google's), driven from the event loop:
each piece of work runs in a thread of its own; a cancelled load stops before its next step
and is waited for (a connection must not close under a statement, nor a retry overlap it)."""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from engine.warehouses.warehouse import WarehouseError

T = TypeVar("T")


class Blocking:
    def __init__(self) -> None:
        self._stopping = threading.Event()  # the load was cancelled: no further step

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        running = asyncio.ensure_future(asyncio.to_thread(work, *args))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            self._stopping.set()
            with contextlib.suppress(Exception):
                await running
            raise

    def step(self, doing: str) -> None:
        """Called by the work in its thread before each step: raises once cancelled."""
        if self._stopping.is_set():
            raise WarehouseError(f"{doing}: stopped")
