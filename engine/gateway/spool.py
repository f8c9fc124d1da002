"""The gateway's local spool: where accepted events wait, on this host's disk, while PostgreSQL
cannot take them.

When a group commit cannot reach the database (it is down, restarting, failing over), the rows
are appended to a file of this process's on the data dir and written through (fdatasync) before
the requests are answered 200: the events are then as safe as that disk, no longer as the
database. As long as anything of this process is spooled, later commits are spooled too, so that
its events reach the ingest log in the order they were accepted.

Each file is a sequence of records: 4 bytes of length, 4 of CRC-32, then the COPY text of one
commit's rows. A record cut short by a crash was never acknowledged and ends the file. A drainer
in every gateway process moves records into the ingest log, each batch of them in one
transaction with the file's drained position (`gateway_spool`): after a crash, even a kill -9
in the middle, nothing is written twice or skipped. Each process drains its own file, and the
files of processes that died (whose lock is free). A drained file is deleted.

Past `max_bytes` of spool on this host, commits that cannot be made are answered 503 again.
"""

import asyncio
import fcntl
import logging
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from engine import db
from engine.db import Pool
from engine.errors import DatabaseError
from engine.sql import Queries
from engine.store import ingest_log

_Q = Queries.beside(__file__, "spool.sql")
log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # length, CRC-32 of the record's text
_DRAIN_EVERY = 1.0
_DRAIN_BYTES = 4 * 1024 * 1024  # per transaction
_CONNECTION_WAIT = 2.0


class Spool:
    def __init__(
        self, directory: Path, max_bytes: int, pool: Pool,
        observe: Callable[[int, int, int], None] = lambda spooled, drained, size: None,
    ) -> None:  # fmt: skip
        self._observe = observe  # events spooled, events drained (since last told), bytes held
        self._dir = directory
        self._max_bytes = max_bytes
        self._pool = pool
        self._host = socket.gethostname()
        self._own: SpoolFile | None = None  # this process's file, while it holds anything
        self._lock = asyncio.Lock()  # appends, and the drainer closing the own file
        self._others = 0  # bytes in other processes' files, as last seen
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="spool-drainer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._own is not None:  # left for the next gateway process to drain
            self._own.close()

    @property
    def holding(self) -> bool:
        """Whether events of this process wait in the spool: later ones must follow them."""
        return self._own is not None

    @property
    def size(self) -> int:
        """Bytes spooled on this host, as last seen."""
        return self._others + (self._own.size if self._own else 0)

    async def append(self, text: str, rows: int) -> bool:
        """Append one commit's rows and write them through; False when the spool is full."""
        record = text.encode()
        record = _HEADER.pack(len(record), zlib.crc32(record)) + record
        async with self._lock:
            if self.size + len(record) > self._max_bytes:
                return False
            if self._own is None:
                self._own = await asyncio.to_thread(SpoolFile.create, self._dir)
            await asyncio.to_thread(self._own.write, record)
        self._observe(rows, 0, self.size)
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self._drain_all()
            except DatabaseError as exc:
                log.warning("spooled events wait for the database: %s", exc)
            except OSError as exc:
                log.error("cannot read the spool in %s: %s", self._dir, exc)
            await asyncio.sleep(_DRAIN_EVERY)

    async def _drain_all(self) -> None:
        others = 0
        for path in sorted(self._dir.glob("*.spool")):
            if self._own is not None and path == self._own.path:
                continue
            orphan = SpoolFile.claim(path)
            if orphan is None:  # another live process's: it drains its own
                others += path.stat().st_size
                continue
            try:
                await self._drain(orphan)
                await self._forget(orphan)
            finally:
                orphan.close()
        self._others = others
        self._observe(0, 0, self.size)
        if self._own is not None:
            await self._drain(self._own)
            async with self._lock:  # no append can come between the check and the close
                if self._own.drained_to == self._own.size:
                    await self._forget(self._own)
                    self._own.close()
                    self._own = None
                    self._observe(0, 0, self.size)

    async def _drain(self, spooled: "SpoolFile") -> None:
        key = f"{self._host}/{spooled.path.name}"
        async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
            spooled.drained_to = int(await db.value(conn, _Q["drained"], {"file": key}) or 0)
        while True:
            records = list(spooled.read(spooled.drained_to, _DRAIN_BYTES))
            if not records:
                return
            end = records[-1][0]
            async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
                await ingest_log.append(conn, "".join(text for _, text in records))
                await ingest_log.wake(conn)
                await conn.execute(_Q["advance"], {"file": key, "drained": end})
            spooled.drained_to = end
            events = sum(text.count("\n") for _, text in records)
            self._observe(0, events, self.size)
            log.info("moved %d spooled event(s) from %s into the ingest log", events, key)

    async def _forget(self, spooled: "SpoolFile") -> None:
        """The file is drained: delete it, then its position (a crash between the two leaves
        a position without a file, which is harmless)."""
        spooled.path.unlink()
        async with db.borrowed(self._pool, timeout=_CONNECTION_WAIT) as conn:
            await conn.execute(_Q["forget"], {"file": f"{self._host}/{spooled.path.name}"})


class SpoolFile:
    """A spool file, locked (flock) by the process that writes or drains it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = os.fstat(fd).st_size
        self.drained_to = 0

    @classmethod
    def create(cls, directory: Path) -> "SpoolFile":
        path = directory / f"{time.time_ns()}-{os.getpid()}.spool"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the file itself survives a crash
        finally:
            os.close(dir_fd)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> "SpoolFile | None":
        """The file, locked, if no live process holds it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:  # drained and deleted meanwhile
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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

    def read(self, start: int, most: int) -> Iterator[tuple[int, str]]:
        """Whole records from `start`, up to about `most` bytes: (their end, their text). A
        record cut short or corrupt ends the file (it was never acknowledged)."""
        at, taken = start, 0
        while taken < most:
            header = os.pread(self._fd, _HEADER.size, at)
            if len(header) < _HEADER.size:
                return
            length, crc = _HEADER.unpack(header)
            body = os.pread(self._fd, length, at + _HEADER.size)
            if len(body) < length or zlib.crc32(body) != crc:
                return
            at += _HEADER.size + length
            taken += length
            yield at, body.decode()

    def close(self) -> None:
        os.close(self._fd)  # (and the lock with it)
