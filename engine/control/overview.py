"""What the control plane's home page says about the running system: which processes are up,
whether the processor keeps up with what the gateways store, what waits for delivery, the last
hour's deliveries and failures, what waits to be loaded into each warehouse (its lag), and how
big the database has grown."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from engine import db, heartbeats
from engine.control import stats
from engine.db import Connection
from engine.pipeline import leases
from engine.pipeline.delivery import backlog
from engine.sql import Queries
from engine.store import ingest_log
from engine.warehouses import uploads

_Q = Queries.beside(__file__, "overview.sql")
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class HostSpool:
    """What a host's gateways last said waits in its spool (engine/gateway/spool.py)."""

    host: str
    bytes: int
    files: int
    damaged: int  # files set aside as damaged
    seen_at: datetime


@dataclass(frozen=True)
class Overview:
    processes: list[heartbeats.Beat]
    newest_event: datetime | None  # received at
    newest_processed: datetime | None  # received at
    last_hour: stats.Activity
    database_bytes: int
    backlog: dict[UUID, backlog.Backlog]
    holdings: list[leases.Holding]
    staged: dict[UUID, uploads.Staged]  # per warehouse: delivered to staging, not loaded yet

    @property
    def behind(self) -> timedelta | None:
        """How far the processor is behind the gateways; None until both have done something."""
        if self.newest_event is None or self.newest_processed is None:
            return None
        return max(self.newest_event - self.newest_processed, timedelta(0))

    @property
    def waiting(self) -> int:
        """Events waiting for delivery, every destination together."""
        return sum(b.waiting for b in self.backlog.values())

    @property
    def oldest_waiting(self) -> datetime | None:
        return min((b.oldest_at for b in self.backlog.values() if b.oldest_at), default=None)

    @property
    def spools(self) -> list[HostSpool]:
        """Each host whose spool holds events (or damaged files), as its gateways last said."""
        return spools(self.processes)

    def up(self, role: str) -> list[heartbeats.Beat]:
        """The live processes of a role (a worker's stages count as the worker)."""
        return [b for b in self.processes if b.alive and b.role.split("/")[0] == role]


def spools(processes: list[heartbeats.Beat]) -> list[HostSpool]:
    newest: dict[str, heartbeats.Beat] = {}
    reports = [b for b in processes if b.role == "gateway" and "spool_bytes" in b.report]
    for beat in sorted(reports, key=lambda b: b.seen_at):
        newest[beat.host] = beat
    found = [
        HostSpool(host, b.report["spool_bytes"], b.report.get("spool_files", 0),
                  b.report.get("spool_damaged", 0), b.seen_at)
        for host, b in sorted(newest.items())
    ]  # fmt: skip
    return [s for s in found if s.bytes or s.damaged]


async def overview(conn: Connection) -> Overview:
    newest, processed = await ingest_log.processing(conn)
    size = int(await db.value(conn, _Q["size"]) or 0)
    return Overview(
        await heartbeats.recent(conn), newest, processed, await stats.recent(conn, HOUR), size,
        await backlog.current(conn), await leases.holdings(conn),
        await uploads.staged_by_destination(conn),
    )  # fmt: skip
