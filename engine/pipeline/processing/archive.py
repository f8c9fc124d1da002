"""The raw-event archive: every accepted event, filed per source and hour in an S3 bucket.

The archiver reads the ingest log in commit order from positions of its own (one per
partition, like the processor's), independent of the processor: a slow or unreachable bucket
never holds up delivery. It takes up to `batch_events` rows, or fewer once the oldest has
waited `batch_seconds`, groups them by source and UTC hour of `received_at`, and uploads each
group as one gzipped NDJSON object — each line an ingest log payload exactly as stored —
through the S3 destination's uploader, under

    <prefix>/<source id>/<YYYY-MM-DD>/<HH>/<first ingest id>.json.gz

Exactly once across objects: the positions advance only after every object of the batch is
stored. A crash in between reads the batch again from the same positions, where the same rows
come first (perhaps followed by more), so each group starts with the same row and is stored
under the same key: the object is replaced, never doubled. One archiver runs at a time (a
session advisory lock), so two can never race to write different versions of one object.
"""

import asyncio
import contextlib
import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from engine import db
from engine.db import Pool
from engine.destinations.base import Verdict
from engine.destinations.s3 import S3Settings, Uploader, object_key
from engine.errors import DatabaseError, SluiceError
from engine.pipeline.metrics import WorkerMetrics
from engine.specs import DeliveryPolicy
from engine.sql import Queries
from engine.store import ingest_log
from engine.store.ingest_log import Logged

_Q = Queries.beside(__file__, "archive.sql")
log = logging.getLogger(__name__)

_POLL = 2.0  # seconds between looks at the log while a partial batch is not yet due
_STANDBY = 5.0  # seconds between attempts while another worker archives
_BACKOFF = DeliveryPolicy(min_backoff_seconds=1.0, max_backoff_seconds=300.0)


@dataclass(frozen=True)
class ArchiveOptions:
    bucket: S3Settings
    batch_events: int = 10_000
    batch_seconds: float = 30.0


class ArchiveUploadFailed(SluiceError):
    """An archive object could not be stored; `error` is the storage service's message."""

    def __init__(self, key: str, error: str) -> None:
        super().__init__(f"archive upload of {key} failed: {error}")
        self.key = key
        self.error = error


class Archiver:
    def __init__(
        self,
        pool: Pool,
        options: ArchiveOptions,
        metrics: WorkerMetrics,
        *,
        partitions: Sequence[int],
    ) -> None:
        self._pool = pool
        self._options = options
        self._metrics = metrics
        self._partitions = list(partitions)
        self._uploader = Uploader()
        self._stop = asyncio.Event()
        self._poll = min(_POLL, options.batch_seconds)

    def stop(self) -> None:
        """Return from `run` at the next wait (an upload in hand is finished first)."""
        self._stop.set()

    async def run(self) -> None:
        async with contextlib.aclosing(self._uploader):
            await self._archive()

    async def _archive(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                wait = await self.step()
                failures = 0
            except ArchiveUploadFailed as exc:
                failures += 1
                wait = _BACKOFF.backoff(failures, None)
                log.warning("%s (attempt %d); retrying in %.0f s", exc, failures, wait)
            except DatabaseError as exc:
                wait = self._poll
                log.warning("archive: database error, retrying: %s", exc)
            except Exception:  # the archive must keep trying, whatever went wrong
                failures += 1
                wait = _BACKOFF.backoff(failures, None)
                log.exception("archive: unexpected error; retrying in %.0f s", wait)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)

    async def step(self) -> float:
        """Archive one batch if it is due; return the seconds to wait before the next step."""
        async with db.borrowed(self._pool) as conn:
            async with conn.transaction():
                locked = await db.value(conn, _Q["try_lock"])
            if not locked:
                return _STANDBY
            try:
                return await self._batch(conn)
            finally:
                with contextlib.suppress(DatabaseError), db.translated():
                    async with conn.transaction():
                        await conn.execute(_Q["unlock"])

    async def _batch(self, conn: db.Connection) -> float:
        limit = self._options.batch_events
        async with conn.transaction():
            positions = await ingest_log.archive_positions(conn, self._partitions)
            start = min(positions.values())
            rows = await ingest_log.read(conn, start, self._partitions, limit)
        if not rows:
            return self._poll
        # Rows at or before their own partition's position were archived already.
        new = [r for r in rows if r.position > positions[r.partition]]
        full = len(rows) >= limit
        if new and not full:
            waited = (datetime.now(UTC) - min(r.received_at for r in new)).total_seconds()
            if waited < self._options.batch_seconds:
                return min(self._options.batch_seconds - waited, self._poll)
        files = await self._upload(new)
        async with conn.transaction():
            await ingest_log.advance_archive(conn, rows[-1].position, self._partitions)
        self._metrics.archived(len(new), files)
        return 0.0 if full else self._poll

    async def _upload(self, rows: list[Logged]) -> int:
        """Store each (source, hour) group as one object; return how many were stored."""
        bucket = self._options.bucket
        groups = _groups(rows)
        for group in groups:
            first = group[0]
            key = object_key(bucket, first.source_id, first.received_at, first.id)
            body = gzip.compress(b"".join(_line(row.payload) for row in group), compresslevel=6)
            stored = await self._uploader.store(bucket, key, body)
            if stored.verdict is not Verdict.DELIVERED:
                raise ArchiveUploadFailed(f"s3://{bucket.bucketName}/{key}",
                                          stored.error or f"HTTP {stored.status}")  # fmt: skip
        return len(groups)


def _groups(rows: list[Logged]) -> list[list[Logged]]:
    """The rows by source and UTC hour of receipt, each group in commit order."""
    groups: dict[tuple[UUID, datetime], list[Logged]] = {}
    for row in rows:
        hour = row.received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        groups.setdefault((row.source_id, hour), []).append(row)
    return list(groups.values())


def _line(payload: str) -> bytes:
    # A line break in stored JSON can only be whitespace between tokens (strings cannot hold
    # raw ones), so a payload stays one line without changing its meaning.
    if "\n" in payload or "\r" in payload:
        payload = payload.replace("\r", " ").replace("\n", " ")
    return payload.encode() + b"\n"
