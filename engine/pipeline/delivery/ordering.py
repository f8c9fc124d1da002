"""Per-user order inside one destination's queue.

Each user's jobs wait in a line; only the head of a line can be sent, and only one job of a
user is in flight at a time. A line whose head waits for a retry holds that user's later jobs
back while every other line keeps moving.
"""

import heapq
from collections import deque
from typing import Generic, Protocol, TypeVar


class _Queued(Protocol):
    @property
    def user_key(self) -> str: ...


J = TypeVar("J", bound=_Queued)


class UserQueues(Generic[J]):
    def __init__(self) -> None:
        self._lines: dict[str, deque[J]] = {}
        self._ready: deque[str] = deque()  # users whose head job may be sent now
        self._waiting: list[tuple[float, str]] = []  # (not before, user): heads awaiting retry
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, job: J, not_before: float | None = None) -> None:
        line = self._lines.get(job.user_key)
        if line is None:
            line = self._lines[job.user_key] = deque()
            if not_before is None:
                self._ready.append(job.user_key)
            else:
                heapq.heappush(self._waiting, (not_before, job.user_key))
        line.append(job)
        self._size += 1

    def take(self, limit: int) -> list[J]:
        """Up to `limit` head jobs, each of a different user; they stay in line until settled."""
        taken: list[J] = []
        while self._ready and len(taken) < limit:
            taken.append(self._lines[self._ready.popleft()][0])
        return taken

    def done(self, job: J) -> None:
        """The head job is settled (delivered or aborted): the user's next job may go."""
        line = self._lines[job.user_key]
        line.popleft()
        self._size -= 1
        if line:
            self._ready.append(job.user_key)
        else:
            del self._lines[job.user_key]

    def retry(self, job: J, not_before: float) -> None:
        """The head job goes again at `not_before`; the user's later jobs wait behind it."""
        heapq.heappush(self._waiting, (not_before, job.user_key))

    def release(self, now: float) -> float | None:
        """Make the retries that are due ready; return when the next one is due, if any."""
        while self._waiting and self._waiting[0][0] <= now:
            self._ready.append(heapq.heappop(self._waiting)[1])
        return self._waiting[0][0] if self._waiting else None
