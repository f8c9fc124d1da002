"""Replaying the raw-event archive: archived events through the pipeline again.

For a source and a time range, the archive's objects of the hours in range are read back
(their folders are named by the UTC hour of receipt), events whose `receivedAt` falls in
[since, until) are kept, and each goes through the source's connections again, the way a
failed-job replay does (event filters, transformation, mapping with the destinations' current
settings) — to one chosen destination or to every one connected. The duplicate check is
bypassed on purpose: replayed events keep their `messageId`, and a replay is asked for.

Replayed jobs refer to no ingest log row (ingest id 0): their event may be past retention, and
a replayed job that fails again is replayed from the archive, not with `sluice failed replay`.
"""

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from engine import codec, db, partitions
from engine.db import Connection
from engine.destinations import s3
from engine.destinations.s3 import S3Settings, object_key
from engine.errors import SluiceError
from engine.pipeline.processing.mapping import Event, route
from engine.pipeline.topology import Route, Topology, load
from engine.sql import Queries
from engine.store import jobs
from engine.transformations.seam import Transformations

_Q = Queries.beside(__file__, "archive_replay.sql")
_BATCH = 500  # events per transaction
_HOUR = timedelta(hours=1)


class ReplayError(SluiceError):
    """The replay cannot start or go on: unknown names, an unreadable archive."""


@dataclass
class ArchiveReplayReport:
    files: int = 0  # archive objects read
    events: int = 0  # events in range, sent through the pipeline again
    jobs: int = 0  # jobs written for them (filters and transformations may drop or fan out)


class ArchiveReplay:
    """One replay: `keys()` lists the objects to read, `replay(key)` replays one of them (so a
    caller can show progress); `report` adds up what was done."""

    def __init__(
        self,
        conn: Connection,
        transformations: Transformations,
        bucket: S3Settings,
        *,
        source: str,
        since: datetime,
        until: datetime,
        destination: str | None = None,
    ) -> None:
        if since >= until:
            raise ReplayError("--from must be before --to")
        self._conn = conn  # in autocommit mode: each batch commits on its own
        self._transformations = transformations
        self._bucket = bucket
        self._source_name, self._destination = source, destination
        self._since, self._until = since, until
        self._source_id: UUID | None = None
        self._topology = Topology({}, {})
        self.report = ArchiveReplayReport()

    async def keys(self) -> list[str]:
        """The archive objects of the hours in range, in key order."""
        source_id = await db.value(self._conn, _Q["source"], {"name": self._source_name})
        if source_id is None:
            raise ReplayError(f"no source named {self._source_name!r}")
        self._source_id = source_id
        self._topology = await self._routes(source_id)
        found: list[str] = []
        async with s3.client(self._bucket) as client:
            for hour in _hours(self._since, self._until):
                folder = object_key(self._bucket, source_id, hour, 0).rsplit("/", 1)[0] + "/"
                found += await _list(client, self._bucket.bucketName, folder)
        return found

    async def replay(self, key: str) -> None:
        assert self._source_id is not None, "keys() first"
        async with s3.client(self._bucket) as client:
            body = await _get(client, self._bucket.bucketName, key)
        events = [e for line in gzip.decompress(body).splitlines() if (e := self._event(line))]
        for start in range(0, len(events), _BATCH):
            batch = events[start : start + _BATCH]
            routed = await route(batch, self._topology, self._transformations)
            async with self._conn.transaction():
                await jobs.write(self._conn, routed.jobs, routed.counts)
            self.report.events += len(batch)
            self.report.jobs += len(routed.jobs)
        self.report.files += 1

    async def _routes(self, source_id: UUID) -> Topology:
        topology = await load(self._conn)
        routes: list[Route] = topology.routes_of(source_id)
        if self._destination is not None:
            routes = [r for r in routes if r.target.name == self._destination]
            if not routes:
                raise ReplayError(
                    f"no destination named {self._destination!r} is connected to source "
                    f"{self._source_name!r}"
                )
        return Topology(topology.targets, {source_id: routes})

    def _event(self, line: bytes) -> Event | None:
        """The archived event, when it is one and was received in range."""
        if not line.strip():
            return None
        try:
            payload = codec.decode(line)
            received = datetime.fromisoformat(payload["receivedAt"])
            message_id = str(payload["messageId"])
        except (msgspec.DecodeError, TypeError, KeyError, ValueError):
            return None
        if not isinstance(payload, dict) or not self._since <= received < self._until:
            return None
        assert self._source_id is not None
        partition = partitions.partition_of(partitions.user_key(payload) or "")
        return Event(0, 0, partition, self._source_id, received, message_id, payload)


def _hours(since: datetime, until: datetime) -> list[datetime]:
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < until:
        hours.append(hour)
        hour += _HOUR
    return hours


async def _list(client: Any, bucket: str, folder: str) -> list[str]:
    keys: list[str] = []
    try:
        async for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=folder
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as exc:
        raise ReplayError(f"cannot list s3://{bucket}/{folder}: {_message(exc)}") from None
    return keys


async def _get(client: Any, bucket: str, key: str) -> bytes:
    try:
        answer = await client.get_object(Bucket=bucket, Key=key)
        async with answer["Body"] as stream:
            body: bytes = await stream.read()
    except (ClientError, BotoCoreError) as exc:
        raise ReplayError(f"cannot read s3://{bucket}/{key}: {_message(exc)}") from None
    return body


def _message(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ")
    return str(exc)
