"""Alerts: silent failure is what hurts most, so a destination can have a rule — failures above
a share of its deliveries over a window, or nothing delivered for a while although events for it
arrive — and an alert fires while the rule's condition holds: a banner in the control plane and
a POST to the rule's webhook when it fires and when it resolves.

The worker's processing stage evaluates the rules every minute from the per-minute stats.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import httpx
import msgspec
import psycopg
from psycopg.rows import class_row

from engine.errors import ConfigError
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "alerts.sql")
MIN_EVENTS = 10  # a failure share is judged over at least this many deliveries and failures
_TIMEOUT = 10.0  # seconds a webhook gets to answer

Kind = Literal["failures", "silence"]


class Conditions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When to alert about a destination (its `alerts` in the workspace file)."""

    failure_percent: float | None = None  # fire above this share of failures (of tries settled)
    window_minutes: int = 15  # ... over this window
    silence_minutes: int | None = None  # fire when nothing is delivered this long, though due
    webhook_url: str | None = None  # POSTed to when an alert fires and when it resolves

    def check(self) -> None:
        """ConfigError for a rule the database would refuse, said the way a user can fix."""
        if self.failure_percent is not None and not 0 < self.failure_percent <= 100:
            raise ConfigError("alerts", "the failure share is a percentage above 0, up to 100")
        if not 1 <= self.window_minutes <= 1440:
            raise ConfigError("alerts", "the window is 1 to 1440 minutes")
        if self.silence_minutes is not None and not 5 <= self.silence_minutes <= 10080:
            raise ConfigError("alerts", "the silence is 5 minutes to 7 days (10080 minutes)")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("alerts", "the webhook is an http(s) URL")


class Rule(Conditions, kw_only=True):
    """A destination's conditions, as stored."""

    destination_id: UUID


@dataclass(frozen=True)
class Alert:
    id: int
    destination_id: UUID
    kind: str
    message: str
    started_at: datetime
    ended_at: datetime | None
    notified: str | None
    destination: str = ""


async def rule(conn: psycopg.AsyncConnection[Any], destination: UUID) -> Rule:
    async with conn.cursor(row_factory=class_row(Rule)) as cur:
        await cur.execute(_Q["rule"], {"destination": destination})
        return await cur.fetchone() or Rule(destination_id=destination)


async def save(conn: psycopg.AsyncConnection[Any], new: Rule) -> bool:
    """Store the rule; whether it changed."""
    new.check()
    cur = await conn.execute(_Q["save"], msgspec.structs.asdict(new))
    return cur.rowcount > 0


async def remove(conn: psycopg.AsyncConnection[Any], destination: UUID) -> bool:
    """No more rule for the destination; whether it had one."""
    cur = await conn.execute(_Q["remove"], {"destination": destination})
    return cur.rowcount > 0


async def active(conn: psycopg.AsyncConnection[Any]) -> list[Alert]:
    """The alerts firing now, oldest first."""
    async with conn.cursor(row_factory=class_row(Alert)) as cur:
        await cur.execute(_Q["active"])
        return await cur.fetchall()


async def history(
    conn: psycopg.AsyncConnection[Any], destination: UUID, limit: int = 10
) -> list[Alert]:
    async with conn.cursor(row_factory=class_row(Alert)) as cur:
        await cur.execute(_Q["history"], {"destination": destination, "limit": limit})
        return await cur.fetchall()


def _holding(rule: Rule, name: str, row: Any) -> list[tuple[Kind, str]]:
    """The rule's conditions that hold, each with what the alert says."""
    _, _, delivered, failed, delivered_lately, due_lately = row
    holding: list[tuple[Kind, str]] = []
    settled = delivered + failed
    if rule.failure_percent is not None and settled >= MIN_EVENTS:
        share = 100 * failed / settled
        if share > rule.failure_percent:
            holding.append(("failures", f"{name}: {failed:,} of {settled:,} events failed in "
                            f"the last {rule.window_minutes} min ({share:.0f}%, above "
                            f"{rule.failure_percent:g}%)"))  # fmt: skip
    if rule.silence_minutes is not None and due_lately > 0 and delivered_lately == 0:
        holding.append(("silence", f"{name}: nothing delivered for {rule.silence_minutes} min "
                        f"although {due_lately:,} events were due"))  # fmt: skip
    return holding


async def evaluate(conn: psycopg.AsyncConnection[Any]) -> tuple[list[Alert], list[Alert]]:
    """Open the alerts whose condition now holds and close those whose condition cleared, in
    one transaction; the alerts opened and closed (to notify)."""
    async with conn.transaction():
        await conn.execute(_Q["lock"])
        async with conn.cursor(row_factory=class_row(Rule)) as cur:
            await cur.execute(_Q["rules"])
            rules = {r.destination_id: r for r in await cur.fetchall()}
        measures = await (await conn.execute(_Q["measures"])).fetchall()
        holding = [
            (row[0], kind, message)
            for row in measures
            for kind, message in _holding(rules[row[0]], row[1], row)
        ]
        opened = []
        async with conn.cursor(row_factory=class_row(Alert)) as cur:
            for destination, kind, message in holding:
                await cur.execute(
                    _Q["open"], {"destination": destination, "kind": kind, "message": message}
                )
                opened += await cur.fetchall()
            await cur.execute(_Q["close"], {"destinations": [h[0] for h in holding],
                                            "kinds": [h[1] for h in holding]})  # fmt: skip
            closed = await cur.fetchall()
    return opened, closed


async def notify(
    conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient, opened: list[Alert],
    closed: list[Alert],
) -> None:  # fmt: skip
    """POST each alert that fired or resolved to its rule's webhook, noting the outcome."""
    for status, alerts in (("firing", opened), ("resolved", closed)):
        for alert in alerts:
            url = (await rule(conn, alert.destination_id)).webhook_url
            if not url:
                continue
            body = {"status": status, "alert": alert.kind, "message": alert.message,
                    "destination_id": str(alert.destination_id),
                    "started_at": alert.started_at.isoformat(),
                    "ended_at": alert.ended_at.isoformat() if alert.ended_at else None}  # fmt: skip
            try:
                answer = await client.post(url, json=body, timeout=_TIMEOUT)
                outcome = (
                    "sent" if answer.is_success else f"the webhook answered {answer.status_code}"
                )
            except httpx.HTTPError as exc:
                outcome = f"the webhook could not be reached: {type(exc).__name__}"
            if outcome != "sent":
                log.warning("alert %d (%s): %s", alert.id, status, outcome)
            await conn.execute(_Q["notified"], {"id": alert.id, "notified": outcome})
