"""From ingested events to router jobs: filters, the transformation seam, the mapping.

Pure of the database, so that what the processor writes can be tested on its own. Each event
fails alone: a transformation error, a mapping that raises or an event the destination cannot
take becomes a failed job with the reason, never an error for the batch.

A destination that stores files (S3) gets one job per source and partition for the whole
batch, a *bundle*: its request's body is the list of the events' bodies, in order, and the job
names its member events so that a replay can find them. Files are written a bundle at a time,
so a bundle settles all its events together; what the bookkeeping costs is then paid per
bundle, not per event.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from engine import codec
from engine.destinations.base import Origin, Request, Unsendable
from engine.partitions import user_key
from engine.pipeline.topology import Route, Target, Topology
from engine.store.counters import Counts
from engine.store.jobs import BUNDLE_EVENTS, Job
from engine.transformations.seam import Metadata, Transformations

log = logging.getLogger(__name__)

_NO_REQUEST = "null"


@dataclass(frozen=True, slots=True)
class Event:
    ingest_tx: int
    ingest_id: int
    partition: int
    source_id: UUID
    received_at: datetime
    message_id: str
    payload: dict[str, Any]


@dataclass
class Routed:
    jobs: list[Job] = field(default_factory=list)
    # (source id, destination id, outcome) → events
    counts: Counts = field(default_factory=Counts)

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.error is not None]

    @property
    def sendable(self) -> list[Job]:
        return [job for job in self.jobs if job.error is None]


def event_name(payload: dict[str, Any]) -> str | None:
    name = payload.get("event") if payload.get("type") == "track" else payload.get("name")
    return name if isinstance(name, str) else None


def _job(
    event: Event, payload: dict[str, Any], target: Target, request: str, error: str | None
) -> Job:
    return Job(
        target.id, event.source_id, event.partition, user_key(event.payload) or "",
        event.ingest_tx, event.ingest_id, event.received_at, event.message_id,
        str(payload.get("type")), event_name(payload), request, error=error,
    )  # fmt: skip


def failed_job(event: Event, target: Target, error: str) -> Job:
    return _job(event, event.payload, target, _NO_REQUEST, error)


def _mapped(
    event: Event, payload: dict[str, Any], target: Target, now: datetime
) -> list[Request] | str:
    """The request(s) one (possibly transformed) event makes for one destination, or why it
    makes none."""
    if target.problem is not None or target.plugin is None:
        return target.problem or "no destination plug-in"
    try:
        origin = Origin(target.id, event.source_id, event.received_at)
        return target.plugin.requests(payload, target.settings, now, origin)
    except Unsendable as exc:
        return str(exc)
    except Exception as exc:  # a mapping bug must fail this event only, and say so
        log.exception("the %s mapping raised for message %s", target.type, event.message_id)
        return f"the {target.type} mapping failed: {type(exc).__name__}: {exc}"


def jobs_for(event: Event, payload: dict[str, Any], target: Target, now: datetime) -> list[Job]:
    """The job(s) one (possibly transformed) event makes for one destination."""
    requests = _mapped(event, payload, target, now)
    if isinstance(requests, str):
        return [failed_job(event, target, requests)]
    return [
        _job(event, payload, target, codec.encode(request).decode(), None) for request in requests
    ]


@dataclass
class _Bundle:
    """A file destination's events of one source and partition in this batch: one job."""

    event: Event  # the first, which names the job
    payload: dict[str, Any]
    target: Target
    requests: list[Request] = field(default_factory=list)
    txs: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def add(self, event: Event, requests: list[Request]) -> None:
        self.requests += requests
        if not self.ids or self.ids[-1] != event.ingest_id:  # fanned-out events: once
            self.txs.append(event.ingest_tx)
            self.ids.append(event.ingest_id)

    def job(self) -> Job:
        first = self.requests[0]
        request = Request(first.method, first.url, body=[r.body for r in self.requests])
        return _job(
            self.event, self.payload, self.target, codec.encode(request).decode(), None
        )._replace(
            events=len(self.requests),
            member_txs=_array(self.txs),
            member_ids=_array(self.ids),
        )


def _array(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def route(
    events: list[Event], topology: Topology, transformations: Transformations
) -> Routed:
    routed = Routed()
    now = datetime.now(UTC)  # the mappings' clock (time windows), once per batch
    groups: dict[tuple[UUID, UUID], tuple[Route, list[tuple[int, Event]]]] = {}
    for index, event in enumerate(events):
        for r in topology.routes_of(event.source_id):
            if not r.target.filter.admits(event.payload):
                routed.counts[event.source_id, r.target.id, "filtered"] += 1
                continue
            groups.setdefault((event.source_id, r.target.id), (r, []))[1].append((index, event))
    ordered: list[tuple[int, int, Job]] = []
    bundles: dict[tuple[UUID, UUID, int], tuple[int, _Bundle]] = {}
    for r, members in groups.values():
        files = r.target.plugin is not None and r.target.plugin.files is not None
        for (index, event), outputs in zip(
            members, await _transform(r, [e for _, e in members], transformations), strict=True
        ):
            if isinstance(outputs, str):
                failed = failed_job(event, r.target, f"transformation failed: {outputs}")
                ordered.append((index, len(ordered), failed))
                continue
            if not outputs:
                routed.counts[event.source_id, r.target.id, "dropped"] += 1
            for payload in outputs:
                if not files:
                    jobs = jobs_for(event, payload, r.target, now)
                    ordered.extend((index, len(ordered), j) for j in jobs)
                    continue
                requests = _mapped(event, payload, r.target, now)
                if isinstance(requests, str):
                    ordered.append((index, len(ordered), failed_job(event, r.target, requests)))
                elif requests:
                    key = (r.target.id, event.source_id, event.partition)
                    if key in bundles and len(bundles[key][1].requests) >= BUNDLE_EVENTS:
                        full_index, full = bundles.pop(key)
                        ordered.append((full_index, len(ordered), full.job()))
                    bundle = bundles.setdefault(key, (index, _Bundle(event, payload, r.target)))
                    bundle[1].add(event, requests)
    ordered.extend((index, len(ordered), bundle.job()) for index, bundle in bundles.values())
    # A user's jobs for a destination keep the order of their events, whichever source or
    # connection produced them.
    ordered.sort(key=lambda item: (item[0], item[1]))
    routed.jobs = [job for _, _, job in ordered]
    for job in routed.failed:
        routed.counts[job.source_id, job.destination_id, "aborted"] += 1
    return routed


async def _transform(
    r: Route, events: list[Event], transformations: Transformations
) -> list[list[dict[str, Any]] | str]:
    if r.transformation_version is None:
        return [[event.payload] for event in events]
    metadata = [
        (e.payload, Metadata(e.source_id, r.target.id, r.target.type, e.message_id)) for e in events
    ]
    results = await transformations.run(r.transformation_version, metadata)
    return [res.error if res.error is not None else res.events for res in results]
