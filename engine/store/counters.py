"""Per-minute counters, written in the same transaction as the work they count, so that the
stats pages agree with the jobs: events per source, destination and outcome; deliveries per
destination and latency bucket; events received per source, call type and name.

Outcomes: a source's events `received`, `duplicate`, `invalid` and `rejected` (by the gateway,
which counts them itself; all against `NO_DESTINATION`); per destination `delivered`, `retried`
(tries that failed and will be tried again), `aborted`, `filtered` (by the destination's event
filters or call types), `dropped` (by a transformation), and `replayed` and `discarded` (an
`aborted` count moved there when the failure is replayed or discarded, so that "failed" means
failed now). `engine.control.stats` reads them back.
"""

import bisect
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from engine.db import Connection
from engine.sql import Queries

_Q = Queries.beside(__file__, "counters.sql")

NO_DESTINATION = UUID(int=0)  # the destination of source-level rows
Counts = Tally[tuple[UUID, UUID, str]]  # (source id, destination id, outcome) → events
Latency = Tally[tuple[UUID, int]]  # (destination id, latency bucket) → events delivered
Names = Tally[tuple[UUID, str, str]]  # (source id, call type, name) → events received
Settled = tuple[datetime, UUID, UUID, int]  # a failure: (failed at, source, destination, events)
_Key = tuple[datetime, UUID, UUID]  # (minute, source id, destination id)
_MINUTE = timedelta(minutes=1)

# Latency buckets: a delivery is counted in the first whose upper bound (seconds) it is under;
# the last is open-ended. Percentiles are read as a bucket's upper bound.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
NAMES_PER_BATCH = 100  # the most frequent kept apart; the rest counted as '' (others)
NAME_LENGTH = 100
RETENTION = timedelta(days=90)


def latency_bucket(took: timedelta) -> int:
    return bisect.bisect_right(LATENCY_BUCKETS, took.total_seconds())


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


async def add(conn: Connection, counts: Counts) -> None:
    await _add(conn, "add", counts, ("sources", "destinations", "outcomes"))


async def add_latency(conn: Connection, latency: Latency) -> None:
    await _add(conn, "add_latency", latency, ("destinations", "buckets"))


async def add_names(conn: Connection, names: Names) -> None:
    await _add(conn, "add_names", names, ("sources", "types", "names"))


async def _add(conn: Connection, query: str, tally: Tally[Any], columns: tuple[str, ...]) -> None:
    """Add a tally to its per-minute table: one upsert, the key's parts as arrays."""
    if not tally:
        return
    keys = sorted(tally)  # a fixed order: concurrent upserts then never deadlock
    params = {name: [key[i] for key in keys] for i, name in enumerate(columns)}
    await conn.execute(_Q[query], {**params, "events": [tally[key] for key in keys]})


async def settle(conn: Connection, failures: Sequence[Settled], state: str) -> None:
    """Failures a person settled stop counting as `aborted`: their events are counted as
    `state` (`replayed`, `discarded`) instead, at the minute they were counted. The worker
    counted an abort at its transaction's minute, which, a moment before the attempt's time,
    may be the previous one: a failure's events are taken from its own minute as far as it
    holds them, the rest from the minute before."""
    wanted = Tally[_Key]()
    for at, source, destination, events in failures:
        wanted[at.replace(second=0, microsecond=0), source, destination] += events
    keys = sorted({(m - step, s, d) for m, s, d in wanted for step in (timedelta(0), _MINUTE)})
    cur = await conn.execute(_Q["aborted_for_settling"], _columns(keys))
    left: Tally[_Key] = Tally({(m, s, d): n for m, s, d, n in await cur.fetchall()})
    moved = Tally[_Key]()
    for (minute, source, destination), events in sorted(wanted.items()):  # the oldest first
        for counted in ((minute, source, destination), (minute - _MINUTE, source, destination)):
            taken = min(events, left[counted])
            left[counted] -= taken
            moved[counted] += taken
            events -= taken
    keys = sorted(key for key, n in moved.items() if n)
    if keys:
        await conn.execute(_Q["settle"], {**_columns(keys), "events": [moved[k] for k in keys],
                                          "state": state})  # fmt: skip


def _columns(keys: list[_Key]) -> dict[str, list[Any]]:
    return {"minutes": [k[0] for k in keys], "sources": [k[1] for k in keys],
            "destinations": [k[2] for k in keys]}  # fmt: skip


async def forget(conn: Connection) -> None:
    """Counters older than `RETENTION` go (the housekeeping's)."""
    for query in ("delete_old_stats", "delete_old_latency", "delete_old_names"):
        await conn.execute(_Q[query], {"retention": RETENTION})
