"""The gateway's Prometheus metrics.

With several gateway worker processes, `PROMETHEUS_MULTIPROC_DIR` is set by the process that
spawns them and each scrape adds up every worker's values. Events are counted in memory and
published to those counters by `publish` (each half second, and before a scrape of this
process): each published increment is a file write and a getpid() system call, which once took
a measurable share of a request.
"""

import asyncio
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PUBLISH_EVERY = 0.5


class GatewayMetrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self._events = Counter(
            "sluice_gateway_events",
            "Events received by the gateway, by source and outcome (accepted / rejected)",
            ["source", "outcome"],
            registry=self._registry,
        )
        self._commit_rows = Histogram(
            "sluice_gateway_commit_rows",
            "Rows written per group commit",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
            registry=self._registry,
        )
        self._commit_seconds = Histogram(
            "sluice_gateway_commit_seconds",
            "Time to COPY and commit one group of requests",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self._registry,
        )
        self._spooled = Counter(
            "sluice_gateway_spooled_events",
            "Events accepted into the local spool while the database was away",
            registry=self._registry,
        )
        self._drained = Counter(
            "sluice_gateway_spool_drained_events",
            "Spooled events moved into the ingest log",
            registry=self._registry,
        )
        self._spool_bytes = Gauge(
            "sluice_gateway_spool_bytes",
            "Bytes of spool files on this host (0: nothing waits for the database)",
            registry=self._registry,
            multiprocess_mode="livemax",
        )
        self._pacing = Gauge(
            "sluice_gateway_pacing_seconds",
            "How long each answer waits after its commit while the pipeline on this host falls "
            "behind (0: not paced; docs/gateway.md, Pacing)",
            registry=self._registry,
            multiprocess_mode="livemax",
        )
        self._sdk_metrics = Counter(
            "sluice_gateway_sdk_metric_series",
            "Metric series browser SDKs posted about themselves (analytics-next's /v1/m)",
            registry=self._registry,
        )
        self._counted: dict[tuple[str, str], int] = {}  # not yet published

    def count(self, source: str, outcome: str, events: int) -> None:
        key = (source, outcome)
        self._counted[key] = self._counted.get(key, 0) + events

    def start(self) -> None:
        self._publisher = asyncio.create_task(self._publish_often(), name="gateway-metrics")

    async def stop(self) -> None:
        self._publisher.cancel()
        await asyncio.gather(self._publisher, return_exceptions=True)
        self.publish()

    async def _publish_often(self) -> None:
        while True:
            await asyncio.sleep(_PUBLISH_EVERY)
            self.publish()

    def publish(self) -> None:
        counted, self._counted = self._counted, {}
        for (source, outcome), events in counted.items():
            self._events.labels(source, outcome).inc(events)

    def commit(self, rows: int, seconds: float) -> None:
        self._commit_rows.observe(rows)
        self._commit_seconds.observe(seconds)

    def spool(self, spooled: int, drained: int, size: int) -> None:
        self._spooled.inc(spooled)
        self._drained.inc(drained)
        self._spool_bytes.set(size)

    def pacing(self, seconds: float) -> None:
        self._pacing.set(seconds)

    def sdk_metrics(self, series: int) -> None:
        self._sdk_metrics.inc(series)

    def render(self) -> bytes:
        self.publish()
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self._registry)
