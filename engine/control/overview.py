"""What the control plane's home page says about the running system: which processes are up,
whether the processor keeps up with what the gateways store, what waits for delivery, the last
hour's deliveries and failures, what waits to be loaded into each warehouse (its lag), how
big the database has grown, and when each host's HTTPS certificate expires."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from engine import db, heartbeats, tls
from engine.control import stats
from engine.db import Connection
from engine.pipeline import leases
from engine.pipeline.delivery import backlog
from engine.sql import Queries
from engine.store import ingest_log
from engine.warehouses import uploads

_Q = Queries.beside(__file__, "overview.sql")
HOUR = timedelta(hours=1)
# A certificate this many days or fewer from expiring is shown as a warning, and alerted on
# (engine/control/alerts.py): time to renew it by hand when the automatic renewal (certbot's,
# 30 days ahead) has failed for two weeks.
WARN_DAYS = 14
SERVE_HTTPS = ("gateway", "web")  # the roles whose heartbeats report a certificate


@dataclass(frozen=True)
class HostSpool:
    """What a host's gateways last said waits in its spool (engine/gateway/spool.py)."""

    host: str
    bytes: int
    files: int
    damaged: int  # files set aside as damaged
    seen_at: datetime


@dataclass(frozen=True)
class HostCertificate:
    """When the HTTPS certificate a host's live gateway and web processes serve expires (the
    earliest, should they serve different ones: a renewal half taken up)."""

    host: str
    expires: datetime

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days from today to the day it expires (UTC), as a calendar counts them."""
        return (self.expires.date() - (now or datetime.now(UTC)).date()).days

    def state(self, now: datetime | None = None) -> Literal["ok", "warning", "expired"]:
        now = now or datetime.now(UTC)
        if self.expires <= now:
            return "expired"
        return "warning" if self.days_left(now) <= WARN_DAYS else "ok"

    def said(self, now: datetime | None = None) -> str:
        """As the overview and alerts say it: "expires 2027-03-01, in 84 days"."""
        now = now or datetime.now(UTC)
        days = self.days_left(now)
        if days == 0:
            verb = "expired" if self.expires <= now else "expires"
            return f"{verb} today at {self.expires:%H:%M} UTC"
        count = f"{abs(days)} day{'' if abs(days) == 1 else 's'}"
        if self.expires <= now:
            return f"expired {self.expires:%Y-%m-%d}, {count} ago"
        return f"expires {self.expires:%Y-%m-%d}, in {count}"


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

    @property
    def certificates(self) -> list[HostCertificate]:
        return certificates(self.processes)

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


def certificates(processes: list[heartbeats.Beat]) -> list[HostCertificate]:
    """Each host serving HTTPS (one whose live gateway or web processes report a certificate),
    by host name."""
    earliest: dict[str, int] = {}
    for beat in processes:
        expires = beat.report.get(tls.REPORT_KEY)
        if beat.alive and beat.role in SERVE_HTTPS and expires is not None:
            earliest[beat.host] = min(expires, earliest.get(beat.host, expires))
    return [
        HostCertificate(host, datetime.fromtimestamp(expires, UTC))
        for host, expires in sorted(earliest.items())
    ]


async def overview(conn: Connection) -> Overview:
    newest, processed = await ingest_log.processing(conn)
    size = int(await db.value(conn, _Q["size"]) or 0)
    return Overview(
        await heartbeats.recent(conn), newest, processed, await stats.recent(conn, HOUR), size,
        await backlog.current(conn), await leases.holdings(conn),
        await uploads.staged_by_destination(conn),
    )  # fmt: skip
