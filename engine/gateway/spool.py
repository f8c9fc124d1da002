"""The gateway's local spool: where accepted events wait, on this host's disk, while PostgreSQL
cannot take them.

When a group commit cannot be made (the database is down, restarting, failing over, read-only),
the rows are appended to a file of this process's on the data dir and written through
(fdatasync) before the requests are answered 200: the events are then as safe as that disk, no
longer as the database. While a process has events in the spool, or a process that died left
some, its commits are spooled too, so that they do not overtake those. (Across live processes,
an event one of them spooled may be overtaken by one another commits once the database is back.)

Each file is a sequence of records: 4 bytes of length, 4 of CRC-32, then the COPY text of one
commit's rows. A record cut short by a crash was never acknowledged and ends the file. A drainer
in every gateway process moves records into the ingest log, each batch of them in one
transaction with the file's drained position (`gateway_spool`): after a crash, even a kill -9
in the middle, nothing is written twice or skipped. Each process drains its own file, and the
files of processes that died (whose lock is free); a drained file is deleted. A row the
database refuses (a value it cannot store) is listed with the gateway's rejections and skipped;
a file damaged in the middle is set aside as `.bad`, with an error in the log.

Past `max_bytes` of spool files on the host, commits that cannot be made are answered 503.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

from engine import db
from engine.db import Connection, Pool
from engine.errors import DatabaseError, ValueRefused
from engine.gateway.log_table import LogTable
from engine.sql import Queries
from engine.store import counters, ingest_log, rejections
from engine.store.counters import NO_DESTINATION
from engine.store.rejections import Rejection

_Q = Queries.beside(__file__, "spool.sql")
log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # length, CRC-32 of the record's text
_DRAIN_EVERY = 1.0
_DRAIN_BYTES = 4 * 1024 * 1024  # per transaction
_LOOK_EVERY = 0.1  # how stale the view of the host's spool files may be
_FINAL_DRAIN = 5.0  # seconds at most, when the gateway stops
_CONNECTION_WAIT = 2.0
_STALE_NEW = 60.0  # a file being created takes microseconds to be named; one this old never was
_MAX_RECORD = 1 << 28  # larger than any commit's rows: a longer length is damage, not a tear
SUFFIX = ".spool"  # a file being written, or left by a process that died
DRAINING = ".orphan"  # a dead process's file, claimed by a drainer (renamed so)
DAMAGED = ".bad"  # a file damaged in the middle, set aside


def report(directory: Path) -> dict[str, int]:
    """A host's spool now: the bytes and files of events waiting in it, and the files set aside
    as damaged. (Nothing there yet: all zero.)"""
    held = held_bytes = damaged = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(DAMAGED):
                damaged += 1
            elif entry.name.endswith((SUFFIX, DRAINING)):
                with contextlib.suppress(FileNotFoundError):  # (moved in meanwhile)
                    held_bytes += entry.stat().st_size
                    held += 1
    return {"spool_bytes": held_bytes, "spool_files": held, "spool_damaged": damaged}


class Spool:
    def __init__(
        self, directory: Path, max_bytes: int, pool: Pool, log_table: LogTable,
        observe: Callable[[int, int, int], None] = lambda spooled, drained, size: None,
    ) -> None:  # fmt: skip
        self._dir = directory
        self._max_bytes = max_bytes
        self._pool = pool
        self._log_table = log_table
        self._observe = observe  # events spooled, events drained (since last told), bytes held
        self._own: SpoolFile | None = None  # this process's file, while it holds anything
        self._lock = asyncio.Lock()  # appends, and the drainer closing the own file
        self._seen: tuple[float, int, int] = (-_LOOK_EVERY, 0, 0)  # when, files, bytes
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        for building in self._dir.glob("*.new"):  # a crash between creating and naming one
            with contextlib.suppress(FileNotFoundError):
                if time.time() - building.stat().st_mtime > _STALE_NEW:
                    building.unlink()  # (empty: nothing was written to it)
        self._task = asyncio.create_task(self._run(), name="spool-drainer")

    async def stop(self) -> None:
        """Stop draining after one last try (bounded): what is left waits for the next
        gateway process of this host."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await asyncio.wait_for(self._drain_all(), _FINAL_DRAIN)
        except Exception as exc:  # (no event data in these) the rest of the stop must go on
            log.warning("spooled events left for the next gateway process: %s", exc)
        if self._own is not None:
            self._own.close()

    @property
    def holding(self) -> bool:
        """Whether events wait in this process's spool file or in one a dead process left:
        later ones must follow them."""
        if self._own is not None:
            return True
        try:
            return self._host()[0] > 0
        except OSError as exc:  # the spool dir is unreadable: nothing can be spooled either
            log.error("cannot read the spool in %s: %s", self._dir, exc)
            return False

    def report(self) -> dict[str, int]:
        return report(self._dir)

    async def append(self, text: str, rows: int) -> bool:
        """Append one commit's rows and write them through; False when the spool is full."""
        record = text.encode()
        record = _HEADER.pack(len(record), zlib.crc32(record)) + record
        async with self._lock:
            if self._host(fresh=True)[1] + len(record) > self._max_bytes:
                return False
            if self._own is None:
                self._own = await asyncio.to_thread(SpoolFile.create, self._dir)
            await asyncio.to_thread(self._own.write, record)
        self._seen = (self._seen[0], self._seen[1], self._seen[2] + len(record))
        self._observe(rows, 0, self._seen[2])
        return True

    def _host(self, fresh: bool = False) -> tuple[int, int]:
        """Files of dead processes (claimed or not), and the bytes of every spool file on this
        host, as seen at most `_LOOK_EVERY` ago (or now)."""
        at, orphans, size = self._seen
        if fresh or time.monotonic() - at >= _LOOK_EVERY:
            orphans = size = 0
            own = self._own.path.name if self._own is not None else None
            with os.scandir(self._dir) as entries:
                for entry in entries:
                    if not entry.name.endswith((SUFFIX, DRAINING)):
                        continue
                    try:
                        size += entry.stat().st_size
                    except FileNotFoundError:  # moved in and deleted meanwhile
                        continue
                    orphans += entry.name.endswith(DRAINING) or (
                        entry.name != own and SpoolFile.unheld(Path(entry.path))
                    )
            self._seen = (time.monotonic(), orphans, size)
        return orphans, size

    async def _run(self) -> None:
        while True:
            try:
                await self._drain_all()
            except DatabaseError as exc:
                log.warning("spooled events wait for the database: %s", exc)
            except Exception as exc:  # (no event data in these) the drainer must go on
                log.error("cannot drain the spool in %s: %s", self._dir, exc)
            await asyncio.sleep(_DRAIN_EVERY)

    async def _drain_all(self) -> None:
        """Every file of a dead process, then this process's own."""
        paths = [*self._dir.glob(f"*{SUFFIX}"), *self._dir.glob(f"*{DRAINING}")]
        for path in sorted(paths, key=lambda p: p.stem):
            if self._own is not None and path == self._own.path:
                continue
            orphan = await asyncio.to_thread(SpoolFile.claim, path)
            if orphan is None:  # another live process's: it drains its own
                continue
            try:
                orphan.rename(DRAINING)  # (still holding back commits while it is moved in)
                await self._drain(orphan, orphan.size)
                await self._forget(orphan)
            finally:
                orphan.close()
        while self._own is not None:  # again at once with what came meanwhile: catch up
            before = self._own.drained_to
            await self._drain(self._own, self._own.size)
            async with self._lock:  # no append can come between the check and the deletion
                if self._own.drained_to == self._own.size:
                    own, self._own = self._own, None
                    own.path.unlink()
                    own.close()
            if self._own is None:
                await self._forget_position(own)
            elif self._own.drained_to == before:  # no progress: the next pass tries again
                break
        self._observe(0, 0, self._host(fresh=True)[1])

    async def _drain(self, spooled: "SpoolFile", end: int) -> None:
        """The file's records up to `end` (what was written through when the drain began)."""
        async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
            drained = await db.value(conn, _Q["drained"], {"file": spooled.path.stem})
        spooled.drained_to = int(drained or 0)
        while True:
            records = await asyncio.to_thread(spooled.read, spooled.drained_to, end)
            if not records:
                break
            upto = records[-1][0]
            text = "".join(text for _, text in records)
            try:
                await self._move(spooled, text, upto)
            except ValueRefused:  # one row at a time, those refused listed and skipped
                await self._move(spooled, text, upto, row_by_row=True)
            spooled.drained_to = upto
            events = text.count("\n")
            self._observe(0, events, self._seen[2])
            log.info("moved %d spooled event(s) from %s into the ingest log", events, spooled.path)
        if not spooled.torn_from(spooled.drained_to, end):  # damaged in the middle: set aside
            log.error("spool file %s is damaged at byte %d (%d bytes after it not moved in); "
                      "set aside as .bad", spooled.path, spooled.drained_to,
                      end - spooled.drained_to)  # fmt: skip
            spooled.rename(DAMAGED)
            if spooled is self._own:
                self._own = None  # (later commits go to a new file)
                spooled.close()
            raise OSError(f"damaged spool file {spooled.path.name}")

    async def _move(self, spooled: "SpoolFile", text: str, upto: int, *, row_by_row: bool = False
                    ) -> None:  # fmt: skip
        """Rows into the ingest log with the file's new position, in one transaction."""
        async with (
            db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn,
            conn.transaction(),  # (the rows' own transactions below are savepoints of it)
        ):
            older_readers = self._log_table.older_readers
            if row_by_row:
                await _each_row(conn, text, older_readers)
            else:
                await ingest_log.append_text(conn, text, older_readers=older_readers)
            await ingest_log.wake(conn)
            await conn.execute(_Q["advance"], {"file": spooled.path.stem, "drained": upto})

    async def _forget(self, spooled: "SpoolFile") -> None:
        """A dead process's file is drained: delete it (before letting go of its lock, so no
        other drainer can take it up again), then its position."""
        spooled.path.unlink(missing_ok=True)
        spooled.close()
        await self._forget_position(spooled)

    async def _forget_position(self, spooled: "SpoolFile") -> None:
        """Left behind if the database is away just then: harmless, as names are never used
        twice."""
        try:
            async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
                await conn.execute(_Q["forget"], {"file": spooled.path.stem})
        except DatabaseError as exc:
            log.info("position of the drained %s kept: %s", spooled.path.stem, exc)


async def _each_row(conn: Connection, text: str, older_readers: bool) -> None:
    """Each row under a savepoint: one the database refuses is listed with the gateway's
    rejections (it was acknowledged, yet cannot be stored) and left out."""
    refused = []
    for line in (row + "\n" for row in text.split("\n")[:-1]):  # (COPY escapes newlines only)
        try:
            with db.translated():
                async with conn.transaction():
                    await ingest_log.append_text(conn, line, older_readers=older_readers)
        except ValueRefused as exc:
            source_id, _, received_at, _, payload = line.split("\t", 4)
            refused.append(Rejection(received_at, source_id,
                                     f"the database refused it: {exc.reason}",
                                     len(payload), payload[: rejections.HEAD_BYTES]))  # fmt: skip
    if refused:
        log.error("%d spooled event(s) refused by the database, listed as rejected", len(refused))
        await rejections.append(conn, refused)
        await counters.add(conn, counters.Counts(
            Counter((UUID(r.source_id), NO_DESTINATION, "rejected") for r in refused)
        ))  # fmt: skip


class SpoolFile:
    """A spool file, locked (flock) by the process that writes or drains it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = os.fstat(fd).st_size
        self.drained_to = 0

    @classmethod
    def create(cls, directory: Path) -> "SpoolFile":
        """A new file, locked before it takes its name (no drainer can claim it first)."""
        name = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}"
        building = directory / f"{name}.new"
        fd = os.open(building, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = building.rename(directory / f"{name}{SUFFIX}")
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the file itself survives a crash
            finally:
                os.close(dir_fd)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd)

    @staticmethod
    def unheld(path: Path) -> bool:
        """Whether no process holds the file (its writer died, and nobody drains it now)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    @classmethod
    def claim(cls, path: Path) -> "SpoolFile | None":
        """The file, locked, if no live process holds it (and it is still there)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:  # drained and deleted meanwhile
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)  # deleted between the open and the lock
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        return cls(path, fd)

    def write(self, record: bytes) -> None:
        try:
            written = os.write(self._fd, record)
            if written < len(record):
                raise OSError(f"only {written} of {len(record)} bytes written")
            os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)  # no torn record before the next one
            raise
        self.size += len(record)

    def torn_from(self, at: int, end: int) -> bool:
        """Whether what is left from `at` to `end` is at most one record, cut short or
        garbled: the one a crash interrupted, never acknowledged. (Anything more is damage.)"""
        if at + _HEADER.size >= end:
            return True
        length: int = _HEADER.unpack(os.pread(self._fd, _HEADER.size, at))[0]
        return at + _HEADER.size + length >= end and length <= _MAX_RECORD

    def read(self, start: int, end: int) -> list[tuple[int, str]]:
        """Whole records from `start` to at most `end`, about `_DRAIN_BYTES` of them: (where
        each ends, its text). A record cut short or corrupt ends the reading."""
        return list(self._records(start, end))

    def _records(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        at, taken = start, 0
        while taken < _DRAIN_BYTES and at + _HEADER.size <= end:
            length, crc = _HEADER.unpack(os.pread(self._fd, _HEADER.size, at))
            if at + _HEADER.size + length > end:
                return
            body = os.pread(self._fd, length, at + _HEADER.size)
            if zlib.crc32(body) != crc:
                return
            at += _HEADER.size + length
            taken += length
            yield at, body.decode()

    def rename(self, suffix: str) -> None:
        self.path = self.path.rename(self.path.with_suffix(suffix))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # (and the lock with it)
            self._fd = -1
