"""Per-minute counters per source, destination and outcome, and the worker's Prometheus metrics.

Counters are written in the same transaction as the work they count, so the stats page agrees
with the jobs; Prometheus counters follow once that transaction has committed.
"""

from collections import Counter as Tally
from typing import Any
from uuid import UUID

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.sql import Queries

_Q = Queries.beside(__file__, "stats.sql")

Counts = Tally[tuple[UUID, UUID, str]]  # (source id, destination id, outcome) → events
ROUTER_OUTCOMES = frozenset({"delivered", "retried", "aborted", "filtered"})


async def add(conn: psycopg.AsyncConnection[Any], counts: Counts) -> None:
    if not counts:
        return
    keys = sorted(counts)  # a fixed order: concurrent upserts then never deadlock
    await conn.execute(
        _Q["add"],
        {
            "sources": [k[0] for k in keys],
            "destinations": [k[1] for k in keys],
            "outcomes": [k[2] for k in keys],
            "events": [counts[k] for k in keys],
        },
    )


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
