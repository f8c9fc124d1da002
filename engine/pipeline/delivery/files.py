"""The batch router: a batch destination's jobs become files (S3 objects), not requests.

Jobs are read like any destination's (commit order, positions per partition, attempt rows) and
gathered per source, in job order, into gzipped newline-delimited JSON — one event per line, the
event exactly as its job stored it. Most jobs here are bundles (made by the processing's
mapping): their body is a list, one element per event. A file goes when it holds the policy's
`file_events` events or `file_bytes` bytes (give or take a bundle: one is never split), or
when its first job has waited `file_seconds`.

Exactly once across files: a file's jobs are marked delivered only after the upload succeeded,
and only once those rows are committed does the next file of that source start. So a crash
leaves at most one uploaded-but-unmarked file per source; after the restart the same first job
starts the next file, which holds the same jobs and perhaps more, under the same key: it
replaces the earlier upload instead of doubling it. A failed upload is retried, or aborted, by
the destination's policy like any delivery, with the storage service's own error message.
"""

import asyncio
import gzip
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import msgspec

from engine.db import Pool
from engine.destinations.base import Files, FilesContext, Stored, Verdict
from engine.pipeline.delivery.attempts import AttemptLog
from engine.pipeline.delivery.router import BUFFER, DestinationRouter, Pending, Result, stored_body
from engine.pipeline.delivery.sender import Sender
from engine.pipeline.topology import Target
from engine.store.jobs import BUNDLE_EVENTS

log = logging.getLogger(__name__)


@dataclass
class _Source:
    """One source's jobs waiting to be filed, oldest first; at most one file in flight."""

    jobs: deque[Pending] = field(default_factory=deque)
    events: int = 0
    size: int = 0  # bytes of the jobs' stored requests
    busy: bool = False
    not_before: float = 0.0  # after a failed upload: when to try again


class FileRouter(DestinationRouter):
    def __init__(
        self,
        target: Target,
        pool: Pool,
        sender: Sender,
        attempts: AttemptLog,
        partitions: Sequence[int],
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(target, pool, sender, attempts, partitions)
        self._sources: dict[UUID, _Source] = {}
        self._uploads = self._files().uploads(FilesContext(target.id, data_dir))

    def behind_since(self) -> datetime | None:
        """Never: what holds a file destination's jobs is its files' own timing (a file waits
        to fill, `file_seconds`) and its store's backoff, per source, not the CPU; a backlog of
        bundles is cheap to catch up (engine/pressure.py)."""
        return None
        # Bundles hold up to BUNDLE_EVENTS events: one read never takes more than the buffer.
        self._read_limit = BUFFER // BUNDLE_EVENTS

    async def stop(self, grace: float) -> None:
        await super().stop(grace)
        await self._uploads.aclose()

    def _files(self) -> Files:
        plugin = self.target.plugin
        assert plugin is not None and plugin.files is not None
        return plugin.files

    def _enqueue(self, job: Pending, not_before: float | None) -> None:
        source = self._sources.setdefault(job.source_id, _Source())
        source.jobs.append(job)
        source.events += job.events
        source.size += len(job.request)
        if not_before is not None:
            source.not_before = max(source.not_before, not_before)

    def _pending(self) -> int:
        return sum(source.events for source in self._sources.values())

    def _release(self, now: float) -> float | None:
        """When the next file is due (full files are due now). A source with a file in flight
        is not waited for: the end of its upload wakes the router."""
        due = [self._due(s, now) for s in self._sources.values() if s.jobs and not s.busy]
        return min(due) if due else None

    def _due(self, source: _Source, now: float) -> float:
        policy = self.target.policy
        if source.events >= policy.file_events or source.size >= policy.file_bytes:
            ready = now
        else:
            waited = (datetime.now(UTC) - source.jobs[0].created_at).total_seconds()
            ready = now + max(0.0, policy.file_seconds - waited)
        return max(ready, source.not_before)

    def _later(self, job: Pending, at: float) -> None:
        source = self._sources[job.source_id]
        source.not_before = max(source.not_before, at)

    def _finished(self, job: Pending) -> None:
        source = self._sources[job.source_id]
        first = source.jobs.popleft()
        assert first is job, "a source's files are settled in order"
        source.events -= job.events
        source.size -= len(job.request)

    def _dispatch(self) -> float | None:
        now = time.monotonic()
        for source_id, source in self._sources.items():
            if len(self._inflight) >= self.target.policy.concurrency:
                break  # the end of an upload wakes the router
            if self._stopping or source.busy or not source.jobs:
                continue
            if self._due(source, now) > now:
                continue
            source.busy = True
            task = asyncio.create_task(self._upload(source_id, source, self._file(source)))
            self._inflight.add(task)
            task.add_done_callback(self._delivered)
        return None

    def _file(self, source: _Source) -> list[Pending]:
        """The jobs of the next file: from the oldest, within the policy's limits."""
        policy = self.target.policy
        jobs: list[Pending] = []
        events = size = 0
        for job in source.jobs:
            full = events >= policy.file_events or size + len(job.request) > policy.file_bytes
            if jobs and full:
                break
            jobs.append(job)
            events += job.events
            size += len(job.request)
        return jobs

    async def _upload(self, source_id: UUID, source: _Source, jobs: list[Pending]) -> None:
        target, files = self.target, self._files()
        try:
            key = files.key(target.settings, source_id, jobs[0].created_at, jobs[0].id)
            body = b"".join(map(_lines, jobs))
            if files.compress:
                body = gzip.compress(body, compresslevel=6)
            stored = await self._uploads.store(target.settings, key, body)
        except Exception as exc:  # a bug must not leave jobs in flight forever: retry them
            log.exception("router %s: upload failed unexpectedly", target.name)
            stored = Stored(Verdict.RETRY, error=f"internal error: {type(exc).__name__}: {exc}")
        error = None if stored.error is None else target.mask(stored.error)
        result = Result(stored.verdict, stored.status, error)
        try:
            for job in jobs:
                self._settle(job, result)
            # The next file of this source starts only once these rows are committed: a crash
            # then leaves at most this one file uploaded but not marked (see the docstring).
            while not await self._attempts.flush():
                await asyncio.sleep(1.0)
        finally:
            source.busy = False


_bundle = msgspec.json.Decoder(list[msgspec.Raw])


def _lines(job: Pending) -> bytes:
    """A job's events, a line each, exactly as stored (a bundle's body is a list of them)."""
    body = stored_body(job.request)
    if not body.startswith(b"["):  # one event: always a JSON object
        return body + b"\n"
    return b"".join(bytes(event) + b"\n" for event in _bundle.decode(body))
