"""Alerts: silent failure is what hurts most, so a destination can have a rule — failures above
a share of its deliveries over a window, or nothing delivered for a while although events for it
arrive — and an alert fires while the rule's condition holds: a banner in the control plane and
a POST to the rule's webhook when it fires and when it resolves.

The worker's processing stage runs `check` every minute (the appliance hands it over): the
rules are evaluated from the per-minute counters.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import httpx
import msgspec

from engine import db
from engine.db import Connection
from engine.specs import AlertConditions
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "alerts.sql")
MIN_EVENTS = 10  # a failure share is judged over at least this many deliveries and failures
_TIMEOUT = 10.0  # seconds a webhook gets to answer
EVERY = 60.0  # seconds between checks

Kind = Literal["failures", "silence"]


class Rule(AlertConditions, kw_only=True):
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


async def rule(conn: Connection, destination: UUID) -> Rule:
    found = await db.row(conn, _Q["rule"], {"destination": destination}, Rule)
    return found or Rule(destination_id=destination)


async def save(conn: Connection, new: Rule) -> bool:
    """Store the rule; whether it changed."""
    new.check()
    cur = await conn.execute(_Q["save"], msgspec.structs.asdict(new))
    return cur.rowcount > 0


async def remove(conn: Connection, destination: UUID) -> bool:
    """No more rule for the destination; whether it had one."""
    cur = await conn.execute(_Q["remove"], {"destination": destination})
    return cur.rowcount > 0


async def active(conn: Connection) -> list[Alert]:
    """The alerts firing now, oldest first."""
    return await db.rows(conn, _Q["active"], None, Alert)


async def history(conn: Connection, destination: UUID, limit: int = 10) -> list[Alert]:
    return await db.rows(conn, _Q["history"], {"destination": destination, "limit": limit}, Alert)


@dataclass(frozen=True)
class _Measure:
    """A rule's destination's counts that its conditions are judged on."""

    destination_id: UUID
    name: str
    delivered: int  # over the window
    failed: int
    delivered_lately: int  # over the silence span
    due_lately: int


def _holding(rule: Rule, measure: _Measure) -> list[tuple[Kind, str]]:
    """The rule's conditions that hold, each with what the alert says."""
    name, delivered, failed = measure.name, measure.delivered, measure.failed
    delivered_lately, due_lately = measure.delivered_lately, measure.due_lately
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


async def evaluate(conn: Connection) -> tuple[list[Alert], list[Alert]]:
    """Open the alerts whose condition now holds and close those whose condition cleared, in
    one transaction; the alerts opened and closed (to notify)."""
    async with conn.transaction():
        await conn.execute(_Q["lock"])
        rules = {r.destination_id: r for r in await db.rows(conn, _Q["rules"], None, Rule)}
        holding = [
            (measure.destination_id, kind, message)
            for measure in await db.rows(conn, _Q["measures"], None, _Measure)
            for kind, message in _holding(rules[measure.destination_id], measure)
        ]
        opened = []
        for destination, kind, message in holding:
            alert = {"destination": destination, "kind": kind, "message": message}
            opened += await db.rows(conn, _Q["open"], alert, Alert)
        held = {"destinations": [h[0] for h in holding], "kinds": [h[1] for h in holding]}
        closed = await db.rows(conn, _Q["close"], held, Alert)
    return opened, closed


async def notify(
    conn: Connection, client: httpx.AsyncClient, opened: list[Alert],
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


async def check(conn: Connection) -> None:
    """Evaluate the rules, then notify the webhooks of what fired or resolved."""
    opened, closed = await evaluate(conn)
    if opened or closed:
        async with httpx.AsyncClient() as client:
            await notify(conn, client, opened, closed)
