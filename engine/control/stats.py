"""The counters read back (`engine.store.counters` writes them): what happened over a recent
window, per source, destination and outcome; counts per bucket of time for the charts; delivery
latency percentiles; the most frequent event names."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from engine.db import Connection
from engine.sql import Queries
from engine.store.counters import LATENCY_BUCKETS

_Q = Queries.beside(__file__, "stats.sql")


async def top_names(
    conn: Connection, window: timedelta, limit: int = 10
) -> list[tuple[str, str, int]]:
    """The most frequent (call type, name) received over the window, with their counts."""
    cur = await conn.execute(_Q["top_names"], {"window": window, "limit": limit})
    return [(kind, name, events) for kind, name, events in await cur.fetchall()]


@dataclass(frozen=True)
class Percentiles:
    p50: float  # seconds: the upper bound of the bucket holding the median delivery
    p95: float
    deliveries: int


async def percentiles(conn: Connection, window: timedelta) -> dict[UUID, Percentiles]:
    """Per destination, how long its deliveries over the window took (receipt → accepted)."""
    cur = await conn.execute(_Q["latency"], {"window": window})
    counts: dict[UUID, list[int]] = {}
    for destination, bucket, events in await cur.fetchall():
        counts.setdefault(destination, [0] * len(LATENCY_BUCKETS))[bucket] += events
    return {d: _percentiles(c) for d, c in counts.items() if sum(c)}


def _percentiles(counts: list[int]) -> Percentiles:
    total = sum(counts)

    def at(share: float) -> float:
        seen = 0
        for bound, n in zip(LATENCY_BUCKETS, counts, strict=True):
            seen += n
            if seen >= share * total:
                return bound
        return LATENCY_BUCKETS[-1]

    return Percentiles(at(0.5), at(0.95), total)


@dataclass(frozen=True)
class Activity:
    """What the counters say about a recent window: events per (source, destination, outcome)
    and the minute each last happened."""

    window: timedelta
    events: dict[tuple[UUID, UUID, str], int]
    last_at: dict[tuple[UUID, UUID, str], datetime]

    @property
    def hours(self) -> int:
        return int(self.window.total_seconds() // 3600)

    def count(
        self, outcome: str, *, source: UUID | None = None, destination: UUID | None = None
    ) -> int:
        return sum(
            n for key, n in self.events.items() if _matches(key, outcome, source, destination)
        )

    def last(
        self, outcome: str, *, source: UUID | None = None, destination: UUID | None = None
    ) -> datetime | None:
        times = [
            t for key, t in self.last_at.items() if _matches(key, outcome, source, destination)
        ]
        return max(times, default=None)


def _matches(
    key: tuple[UUID, UUID, str], outcome: str, source: UUID | None, destination: UUID | None
) -> bool:
    return (
        key[2] == outcome
        and (source is None or key[0] == source)
        and (destination is None or key[1] == destination)
    )


async def recent(
    conn: Connection,
    window: timedelta = timedelta(hours=24),
    *,
    source: UUID | None = None,
    destination: UUID | None = None,
) -> Activity:
    """The counters of the last `window` (to the minute): of one source (its own and its
    events' at every destination), of one destination, or of everything."""
    params = {"window": window, "source": source, "destination": destination}
    cur = await conn.execute(_Q["recent"], params)
    rows = await cur.fetchall()
    return Activity(
        window,
        {(r[0], r[1], r[2]): r[3] for r in rows},
        {(r[0], r[1], r[2]): r[4] for r in rows},
    )


@dataclass(frozen=True)
class Series:
    """Counts per bucket of `step` over a window: `buckets` (their starts, oldest first, the
    last one the current) and, per (source, destination, outcome), a count for each."""

    step: timedelta
    buckets: list[datetime]
    counts: dict[tuple[UUID, UUID, str], list[int]]

    def of(
        self, outcome: str, *, source: UUID | None = None, destination: UUID | None = None
    ) -> list[int]:
        """The counts of an outcome per bucket, summed over what the filter leaves."""
        total = [0] * len(self.buckets)
        for key, values in self.counts.items():
            if _matches(key, outcome, source, destination):
                total = [a + b for a, b in zip(total, values, strict=True)]
        return total


async def series(conn: Connection, window: timedelta, step: timedelta) -> Series:
    cur = await conn.execute(_Q["series"], {"window": window, "step": step})
    rows = await cur.fetchall()
    now = await (await conn.execute(_Q["now"])).fetchone()
    assert now is not None
    last = _aligned(now[0], step)
    buckets = [last - step * i for i in range(int(window / step), -1, -1)]
    index = {bucket: i for i, bucket in enumerate(buckets)}
    counts: dict[tuple[UUID, UUID, str], list[int]] = {}
    for bucket, source, destination, outcome, events in rows:
        if bucket in index:
            counts.setdefault((source, destination, outcome), [0] * len(buckets))[
                index[bucket]
            ] += events
    return Series(step, buckets, counts)


def _aligned(moment: datetime, step: timedelta) -> datetime:
    """The start of the bucket of `step` holding `moment` (as the query's date_bin)."""
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    return origin + step * ((moment - origin) // step)
