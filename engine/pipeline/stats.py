"""Per-minute counters per source, destination and outcome, and the worker's Prometheus metrics.

Counters are written in the same transaction as the work they count, so the stats page agrees
with the jobs; Prometheus counters follow once that transaction has committed. Outcomes: a
source's events `received`, `duplicate` and `invalid` (counted against `NO_DESTINATION`); per
destination `delivered`, `retried` (tries that failed and will be tried again), `aborted`,
`filtered` (by the destination's event filters or call types) and `dropped` (by a
transformation).
"""

from collections import Counter as Tally
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.sql import Queries

_Q = Queries.beside(__file__, "stats.sql")

Counts = Tally[tuple[UUID, UUID, str]]  # (source id, destination id, outcome) → events
Latency = Tally[tuple[UUID, int]]  # (destination id, latency bucket) → events delivered

# Latency buckets: a delivery is counted in the first whose upper bound (seconds) it is under;
# the last is open-ended. Percentiles are read as a bucket's upper bound.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))


def latency_bucket(took: timedelta) -> int:
    seconds = took.total_seconds()
    return next(i for i, bound in enumerate(LATENCY_BUCKETS) if seconds < bound)


Names = Tally[tuple[UUID, str, str]]  # (source id, call type, name) → events received
NAMES_PER_BATCH = 100  # the most frequent kept apart; the rest counted as '' (others)
NAME_LENGTH = 100


def names_of(payloads: list[tuple[UUID, dict[str, Any]]]) -> Names:
    """A batch's events per source, call type and name, for the top names: bounded however
    many distinct names the events carry (they are chosen by whoever sends them)."""
    tally = Names()
    for source, payload in payloads:
        name = payload.get("event") if payload.get("type") == "track" else payload.get("name")
        kind = payload.get("type")
        tally[source, str(kind)[:20], name[:NAME_LENGTH] if isinstance(name, str) else ""] += 1
    kept = Names(dict(tally.most_common(NAMES_PER_BATCH)))
    for (source, kind, _), n in (tally - kept).items():
        kept[source, kind, ""] += n
    return kept


async def add_names(conn: psycopg.AsyncConnection[Any], names: Names) -> None:
    await _add(conn, "add_names", names, ("sources", "types", "names"))


async def top_names(
    conn: psycopg.AsyncConnection[Any], window: timedelta, limit: int = 10
) -> list[tuple[str, str, int]]:
    """The most frequent (call type, name) received over the window, with their counts."""
    cur = await conn.execute(_Q["top_names"], {"window": window, "limit": limit})
    return [(kind, name, events) for kind, name, events in await cur.fetchall()]


async def add_latency(conn: psycopg.AsyncConnection[Any], latency: Latency) -> None:
    await _add(conn, "add_latency", latency, ("destinations", "buckets"))


async def _add(
    conn: psycopg.AsyncConnection[Any],
    query: str,
    tally: Tally[Any],
    columns: tuple[str, ...],
) -> None:
    """Add a tally to its per-minute table: one upsert, the key's parts as arrays."""
    if not tally:
        return
    keys = sorted(tally)  # a fixed order: concurrent upserts then never deadlock
    params = {name: [key[i] for key in keys] for i, name in enumerate(columns)}
    await conn.execute(_Q[query], {**params, "events": [tally[key] for key in keys]})


@dataclass(frozen=True)
class Percentiles:
    p50: float  # seconds: the upper bound of the bucket holding the median delivery
    p95: float
    deliveries: int


async def percentiles(
    conn: psycopg.AsyncConnection[Any], window: timedelta
) -> dict[UUID, Percentiles]:
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


ROUTER_OUTCOMES = frozenset({"delivered", "retried", "aborted", "filtered"})


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
    conn: psycopg.AsyncConnection[Any],
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


async def series(conn: psycopg.AsyncConnection[Any], window: timedelta, step: timedelta) -> Series:
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


async def add(conn: psycopg.AsyncConnection[Any], counts: Counts) -> None:
    await _add(conn, "add", counts, ("sources", "destinations", "outcomes"))


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._router = Counter(
            "sluice_router_events",
            "Events per destination and outcome (delivered, retried, aborted, filtered)",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self._processed = Counter(
            "sluice_processor_events",
            "Events read from the ingest log by the processor",
            registry=self.registry,
        )

        self._archived = Counter(
            "sluice_archive_events", "Events stored in the raw-event archive",
            registry=self.registry,
        )  # fmt: skip
        self._archive_files = Counter(
            "sluice_archive_files", "Objects uploaded to the raw-event archive",
            registry=self.registry,
        )  # fmt: skip
        self._archive_last = Gauge(
            "sluice_archive_last_upload_timestamp_seconds",
            "When the raw-event archive last advanced (Unix time)",
            registry=self.registry, multiprocess_mode="max",
        )  # fmt: skip

    def archived(self, events: int, files: int) -> None:
        self._archived.inc(events)
        self._archive_files.inc(files)
        self._archive_last.set_to_current_time()

    def processed(self, events: int) -> None:
        self._processed.inc(events)

    def count(self, counts: Counts, names: dict[UUID, str]) -> None:
        for (_, destination, outcome), events in counts.items():
            if outcome in ROUTER_OUTCOMES and destination in names:
                self._router.labels(names[destination], outcome).inc(events)
