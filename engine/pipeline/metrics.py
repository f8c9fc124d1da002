"""The worker's Prometheus metrics: counted once the work they count has committed (the
per-minute counters in the database are written in the same transaction as the work)."""

from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.store.counters import Counts

ROUTER_OUTCOMES = frozenset({"delivered", "retried", "aborted", "filtered"})


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
