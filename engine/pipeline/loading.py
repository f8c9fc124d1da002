"""The load stage: what this host has staged for warehouses, loaded into them.

For each enabled warehouse destination — one load of it at a time across all hosts (they share
its tables: an advisory lock) — a load starts when `syncFrequency` minutes have passed since
the last one, when a sync is asked for ("Sync now", `sluice warehouse sync`), or when a failed
load is due again. Each source has its own schema, so each source's staged files are a load of
their own. A failed load keeps its files and is tried again — after a minute, doubling up to
half an hour, or at once on a sync request — until it succeeds: nothing is dropped, and the
source's newer files wait behind it.

The stage runs in a process of its own: a load is seconds of CPU, which must not hold up the
routers' deliveries. A warehouse on this machine shares its cores with the deliveries: it is
loaded on at most half of them (one table at a time on two cores), not on as many sessions as
the warehouse kind would take. Every few seconds the stage also writes down what this host has
staged and not loaded, which the control plane shows as each warehouse's lag.
"""

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from engine import db
from engine.db import Connection, Pool
from engine.errors import DatabaseError
from engine.pipeline.topology import Following, Target, Topology
from engine.warehouses import loader, staging, uploads
from engine.warehouses.settings import WarehouseSettings
from engine.warehouses.staging import Staged
from engine.warehouses.warehouse import WarehouseError, WarehouseKind

log = logging.getLogger(__name__)
POLL = 5.0  # seconds between looks when nothing announces a sync
FIRST_RETRY = 60.0
LAST_RETRY = 1800.0


def retry_delay(attempts: int) -> float:
    """Seconds before a failed load is tried again: doubling, with jitter."""
    ceiling = min(LAST_RETRY, FIRST_RETRY * 2.0 ** (attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Loading:
    def __init__(self, pool: Pool, following: Following, root: Path, node: str) -> None:
        self._pool = pool
        self._following = following
        self._root = root
        self._node = node
        self.wake = asyncio.Event()  # a sync was asked for

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            topology = self._following.topology()
            try:
                for target in _warehouses(topology):
                    if stop.is_set():
                        break
                    await self._turn(target, topology)
                await self._report(topology)
            except DatabaseError as exc:
                log.warning("warehouse loads wait for the database: %s", exc)
            waiting = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waiting, timeout=POLL, return_when=asyncio.FIRST_COMPLETED)
            for task in waiting:
                task.cancel()

    async def _turn(self, target: Target, topology: Topology) -> None:
        async with db.borrowed(self._pool) as conn:
            if not await uploads.lock(conn, target.id):
                await conn.commit()
                return  # another host is loading it: its turn
            try:
                await self._loads(conn, target, topology)
            finally:
                await conn.rollback()  # (a failed statement must not keep the unlock from running)
                await uploads.unlock(conn, target.id)
                await conn.commit()

    async def _loads(self, conn: Connection, target: Target, topology: Topology) -> None:
        settings: WarehouseSettings = target.settings
        started = datetime.now(UTC)
        requested = await uploads.sync_requested(conn, target.id)
        last = await uploads.last_started(conn, self._node, target.id)
        scheduled = last is None or (started - last).total_seconds() >= settings.sync_minutes * 60
        blocked: set[UUID] = set()
        for upload in await uploads.unfinished(conn, self._node, target.id):
            blocked.add(upload.source_id)
            retry_due = upload.next_attempt_at is None or upload.next_attempt_at <= started
            if upload.status != "failed" or retry_due or requested is not None:
                await self._load(conn, target, upload.id, upload.namespace, upload.files)
        if requested is not None or scheduled:
            by_source: dict[UUID, list[Staged]] = {}
            for found in staging.pending(self._root, target.id):
                by_source.setdefault(found.source_id, []).append(found)
            for source_id, files in by_source.items():
                if source_id in blocked:
                    continue
                namespace = _namespace(
                    target, settings, topology.sources.get(source_id, str(source_id))
                )
                events = sum(f.summary.events for f in files)
                times = [f.summary.oldest_event_at for f in files if f.summary.oldest_event_at]
                oldest = min(times, default=None)
                keys = [f.key for f in files]
                created = await uploads.create(conn, target.id, source_id, self._node, namespace,
                                              keys, events, oldest)  # fmt: skip
                await conn.commit()
                await self._load(conn, target, created, namespace, keys)
        if requested is not None:
            await uploads.answer_sync(conn, target.id, started)
            await conn.commit()

    async def _load(
        self, conn: Connection, target: Target, upload: int, namespace: str, keys: list[str]
    ) -> bool:
        kind = target.plugin.warehouse if target.plugin else None
        assert kind is not None
        attempts = await uploads.start(conn, upload)
        await conn.commit()
        files = [f for key in keys if (f := staging.find(self._root, target.id, key)) is not None]
        try:
            loaded = await _into(kind, target, namespace, files)
        except (WarehouseError, OSError) as exc:
            error = target.mask(str(exc))
        except Exception as exc:  # a bug must not stop the stage: the load is tried again
            log.exception("warehouse %s: load %d failed unexpectedly", target.name, upload)
            error = target.mask(f"internal error: {type(exc).__name__}: {exc}")
        else:
            await uploads.finish(conn, upload, loaded.tables, loaded.discards)
            await uploads.save_schema(conn, target.id, namespace, loaded.schema)
            await conn.commit()
            for key in keys:
                staging.remove(self._root, target.id, key)
            log.info("warehouse %s: loaded %d file(s) into %s: %s", target.name, len(files),
                     namespace, loaded.tables)  # fmt: skip
            return True
        delay = retry_delay(attempts)
        log.warning("warehouse %s: load %d failed (attempt %d, next in %.0f s): %s",
                    target.name, upload, attempts, delay, error)  # fmt: skip
        await uploads.fail(conn, upload, error, delay)
        await conn.commit()
        return False

    async def _report(self, topology: Topology) -> None:
        """What this host has staged and not loaded, for the lag the control plane shows; the
        staged rows of destinations deleted since go with them."""
        found: dict[tuple[UUID, UUID], uploads.Staged] = {}
        if self._root.is_dir():
            for folder in self._root.iterdir():
                destination = _uuid(folder.name)
                if destination is None:
                    continue
                if destination not in topology.targets:
                    log.info("removing rows staged for deleted destination %s", destination)
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                for file in staging.pending(self._root, destination):
                    _count(found, (destination, file.source_id), file)
        async with db.borrowed(self._pool) as conn:
            await uploads.save_staged(conn, self._node, found)
            await conn.commit()


async def _into(
    kind: WarehouseKind, target: Target, namespace: str, files: list[Staged]
) -> loader.Loaded:
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(kind.open(target.settings))
                    for _ in range(sessions_for(kind, target.settings))]  # fmt: skip
        append = target.settings.preferAppend
        return await loader.load(sessions, kind.provider, namespace, files, append=append,
                                 limits=kind.limits)  # fmt: skip


def sessions_for(kind: WarehouseKind, settings: WarehouseSettings) -> int:
    """How many tables a load of this warehouse loads at once."""
    if not _on_this_machine(str(getattr(settings, "host", ""))):
        return kind.sessions
    return max(1, min(kind.sessions, len(os.sched_getaffinity(0)) // 2))


def _on_this_machine(host: str) -> bool:
    host = host.strip().strip("[]").rstrip(".").lower()  # ([::1] as a URL has it; localhost.)
    if host == "localhost" or host.startswith("/"):  # (a directory: a Unix socket's)
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _warehouses(topology: Topology) -> list[Target]:
    return [
        t for t in topology.targets.values()
        if t.enabled and t.problem is None and t.plugin is not None and t.plugin.warehouse
    ]  # fmt: skip


def _namespace(target: Target, settings: WarehouseSettings, source: str) -> str:
    kind = target.plugin.warehouse if target.plugin else None
    assert kind is not None
    return settings.schema_for(source, kind.provider)


def _count(found: dict[tuple[UUID, UUID], uploads.Staged], key: tuple[UUID, UUID],
           file: Staged) -> None:  # fmt: skip
    known = found.setdefault(key, uploads.Staged(0, 0, None))
    known.files += 1
    known.events += file.summary.events
    oldest = file.summary.oldest_event_at
    if oldest is not None:
        moment = datetime.fromisoformat(oldest)
        if known.oldest_event_at is None or moment < known.oldest_event_at:
            known.oldest_event_at = moment


def _uuid(text: str) -> UUID | None:
    with contextlib.suppress(ValueError):
        return UUID(text)
    return None
