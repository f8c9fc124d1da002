"""What wakes the worker's loops before their timers do: a hint, never the guarantee (each loop
also polls).

Three kinds: events were ingested (the processor reads them), jobs were written for some
destinations (their routers read them), the workspace changed (the worker loads it again).
Other processes' wake-ups arrive as database notifications, which the listener hands over; a
processor wakes the routers of its own process directly, without the round trip. Whoever
waits subscribes for as long as it runs.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar
from uuid import UUID

Destinations = set[UUID] | None  # whose jobs were written (None: any destination's)
_Wake = TypeVar("_Wake")


class Wakeups:
    def __init__(self) -> None:
        self._ingested: set[Callable[[], None]] = set()
        self._jobs: set[Callable[[Destinations], None]] = set()
        self._workspace: set[Callable[[], None]] = set()

    def ingested(self) -> None:
        for wake in list(self._ingested):
            wake()

    def jobs_written(self, destinations: Destinations = None) -> None:
        for wake in list(self._jobs):
            wake(destinations)

    def workspace_changed(self) -> None:
        for wake in list(self._workspace):
            wake()

    def on_ingested(self, wake: Callable[[], None]) -> AbstractContextManager[None]:
        return _subscribed(self._ingested, wake)

    def on_jobs(self, wake: Callable[[Destinations], None]) -> AbstractContextManager[None]:
        return _subscribed(self._jobs, wake)

    def on_workspace(self, wake: Callable[[], None]) -> AbstractContextManager[None]:
        return _subscribed(self._workspace, wake)


@contextmanager
def _subscribed(subscribers: set[_Wake], wake: _Wake) -> Iterator[None]:
    subscribers.add(wake)
    try:
        yield
    finally:
        subscribers.discard(wake)
