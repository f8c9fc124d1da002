"""Per-user order inside one destination's queue.

Each user's jobs wait in a line; only the front of a line can be sent, and while any of a
user's jobs is in flight no other job of that user is taken. Usually one job goes at a time;
a batching destination may take the first few of a line together (`take(together=…)`), when
they travel in one request, in order. A line whose front waits for a retry holds that user's
later jobs back while every other line keeps moving.
"""

import heapq
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Queued(Protocol):
    @property
    def user_key(self) -> str: ...


J = TypeVar("J", bound=_Queued)


class UserQueues(Generic[J]):
    def __init__(self) -> None:
        self._lines: dict[str, deque[J]] = {}
        self._ready: deque[str] = deque()  # users whose front job may be sent now
        self._waiting: list[tuple[float, str]] = []  # (not before, user): fronts awaiting retry
        self._inflight: dict[str, int] = {}  # user → jobs taken and not settled yet
        self._retry_at: dict[str, float] = {}  # user → when the retried jobs may go again
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

    def take(self, limit: int, together: Callable[[J, J], bool] | None = None) -> list[J]:
        """Up to `limit` jobs from the front of the ready lines: one per user, or, where
        `together(first, next)` says so, a user's next jobs too. They stay in line until
        settled."""
        taken: list[J] = []
        while self._ready and len(taken) < limit:
            user = self._ready.popleft()
            line = self._lines[user]
            first = line[0]
            count = 1
            room = min(len(line), limit - len(taken))
            while together is not None and count < room and together(first, line[count]):
                count += 1
            taken.extend(line[i] for i in range(count))
            self._inflight[user] = count
        return taken

    def done(self, job: J) -> None:
        """The job is settled (delivered or aborted)."""
        line = self._lines[job.user_key]
        if line[0] is job:
            line.popleft()
        else:  # settled before an earlier job of its request that is retried
            line.remove(job)
        self._size -= 1
        self._landed(job.user_key)

    def retry(self, job: J, not_before: float) -> None:
        """The job goes again at `not_before`; the user's later jobs wait behind it."""
        user = job.user_key
        self._retry_at[user] = max(self._retry_at.get(user, not_before), not_before)
        self._landed(user)

    def _landed(self, user: str) -> None:
        """One of the user's jobs in flight is settled: when the last is, the line moves on."""
        self._inflight[user] -= 1
        if self._inflight[user]:
            return
        del self._inflight[user]
        if user in self._retry_at:
            heapq.heappush(self._waiting, (self._retry_at.pop(user), user))
        elif self._lines[user]:
            self._ready.append(user)
        else:
            del self._lines[user]

    def release(self, now: float) -> float | None:
        """Make the retries that are due ready; return when the next one is due, if any."""
        while self._waiting and self._waiting[0][0] <= now:
            self._ready.append(heapq.heappop(self._waiting)[1])
        return self._waiting[0][0] if self._waiting else None
