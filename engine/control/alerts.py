"""Alerts: silent failure is what hurts most, so a destination can have a rule — failures above
a share of its deliveries over a window, or nothing delivered for a while although events for it
arrive — and an alert fires while the rule's condition holds: a banner in the control plane, and
a notice to the rule's targets (a webhook, Slack, email: `alert_targets`) when it fires and when
it resolves. Each target's outcome is kept, for the Alerts page's history.

One alert needs no rule: a host's HTTPS certificate within `overview.WARN_DAYS` of expiring
(or expired) fires until a renewed one is in service. Nobody wants that one silenced by
default, so every install has it, and it tells every target the rules name.

The worker's processing stage runs `check` every minute (the appliance hands it over): the
rules are evaluated from the per-minute counters.
"""

import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from engine import db, heartbeats
from engine.control import alert_targets, overview, settings
from engine.control.alert_targets import Notice, Status
from engine.db import Connection
from engine.pipeline.delivery.sender import Sender
from engine.specs import AlertConditions
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "alerts.sql")
MIN_EVENTS = 10  # a failure share is judged over at least this many deliveries and failures
EVERY = 60.0  # seconds between checks

Kind = Literal["failures", "silence", "certificate"]


class Rule(AlertConditions, kw_only=True):
    """A destination's conditions, as stored."""

    destination_id: UUID


@dataclass(frozen=True)
class Alert:
    id: int
    destination_id: UUID | None  # None for a certificate's alert, which is a host's
    kind: str
    message: str
    started_at: datetime
    ended_at: datetime | None
    notified: str | None  # what became of the latest notices: "sent", or what went wrong
    host: str | None = None  # a certificate's alert's
    destination: str = ""
    # each target's outcome: {"status": firing/resolved, "target": …, "outcome": "sent" or why}
    notices: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Targets:
    """Where an alert is told: a rule's targets, or (a certificate's alert) every rule's."""

    webhooks: list[str]
    slacks: list[str]
    emails: list[str]


@dataclass(frozen=True)
class RuleState:
    """A rule as the Alerts page lists it, for anyone to see: its targets by kind only."""

    destination_id: UUID
    destination: str
    enabled: bool
    failure_percent: float | None
    window_minutes: int
    silence_minutes: int | None
    webhook: bool
    slack: bool
    emails: int
    firing_since: datetime | None

    @property
    def conditions(self) -> list[str]:
        said = []
        if self.failure_percent is not None:
            said.append(f"over {self.failure_percent:g}% failed in {self.window_minutes} min")
        if self.silence_minutes is not None:
            said.append(f"nothing delivered for {self.silence_minutes} min")
        return said

    @property
    def targets(self) -> list[str]:
        emails = [f"email ({self.emails})"] if self.emails else []
        return ["webhook"] * self.webhook + ["Slack"] * self.slack + emails


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


async def rules(conn: Connection) -> list[RuleState]:
    """Every rule, by destination name, with whether it fires now."""
    return await db.rows(conn, _Q["overview"], None, RuleState)


async def recent(conn: Connection, limit: int = 50, before: int | None = None) -> list[Alert]:
    """Alerts of every destination, newest first, with what each target made of them;
    `before` (an alert id) pages back."""
    return await db.rows(conn, _Q["recent"], {"limit": limit, "before": before}, Alert)


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


def _expiring(processes: list[heartbeats.Beat]) -> list[tuple[str, str]]:
    """The hosts whose certificate is due for an alert, each with what the alert says (its
    date, not a count of days: the message stays true while the alert is open)."""
    return [
        (c.host, f"the HTTPS certificate of {c.host} "
                 f"{'expired' if c.state() == 'expired' else 'expires'} on {c.expires:%Y-%m-%d}")
        for c in overview.certificates(processes)
        if c.state() != "ok"
    ]  # fmt: skip


async def evaluate(conn: Connection) -> tuple[list[Alert], list[Alert]]:
    """Open the alerts whose condition now holds and close those whose condition cleared, in
    one transaction; the alerts opened and closed (to notify)."""
    async with conn.transaction():
        await conn.execute(_Q["lock"])
        opened, closed = await _of_rules(conn)
        certificates_opened, certificates_closed = await _of_certificates(conn)
    return opened + certificates_opened, closed + certificates_closed


async def _of_rules(conn: Connection) -> tuple[list[Alert], list[Alert]]:
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
    return opened, await db.rows(conn, _Q["close"], held, Alert)


async def _of_certificates(conn: Connection) -> tuple[list[Alert], list[Alert]]:
    """A certificate's alert holds while its host's live processes serve it: it resolves once
    they serve a renewed one (or none: plain HTTP again). A host whose serving processes are
    not heard from (down, restarting) keeps its alert: nothing says the certificate changed."""
    processes = await heartbeats.recent(conn)
    expiring = _expiring(processes)
    opened = []
    for host, message in expiring:
        alert = {"host": host, "message": message}
        opened += await db.rows(conn, _Q["open_certificate"], alert, Alert)
    serving = [b for b in processes if b.role in overview.SERVE_HTTPS]
    unheard = {b.host for b in serving} - {b.host for b in serving if b.alive}
    held = {"hosts": [host for host, _ in expiring] + sorted(unheard)}
    return opened, await db.rows(conn, _Q["close_certificates"], held, Alert)


async def notify(
    conn: Connection, sender: Sender, opened: list[Alert],
    closed: list[Alert],
) -> None:  # fmt: skip
    """Tell each alert that fired or resolved to its rule's targets, noting each outcome."""
    smtp = await settings.smtp(conn)
    told: tuple[tuple[Status, list[Alert]], ...] = (("firing", opened), ("resolved", closed))
    for status, alerts in told:
        for alert in alerts:
            notice = Notice(status, alert.kind, alert.message, alert.destination_id,
                            alert.started_at, alert.ended_at)  # fmt: skip
            targets = await _targets(conn, alert)
            await _noted(conn, alert, status, await _tell(sender, smtp, targets, notice))


async def _targets(conn: Connection, alert: Alert) -> Targets:
    if alert.destination_id is None:
        return await db.row(conn, _Q["every_target"], None, Targets) or Targets([], [], [])
    found = await rule(conn, alert.destination_id)
    webhooks = [found.webhook_url] if found.webhook_url else []
    return Targets(webhooks, [found.slack_url] if found.slack_url else [], found.email_to)


async def _tell(
    sender: Sender, smtp: settings.Smtp | None, targets: Targets, notice: Notice
) -> dict[str, str]:
    """The targets told, one after another; what became of each kind (all the webhooks
    together, all the Slack ones together, one email to every address)."""
    outcomes = {}
    if targets.webhooks:
        told = [await _told(alert_targets.webhook(sender, url, notice)) for url in targets.webhooks]
        outcomes["webhook"] = _together(told)
    if targets.slacks:
        told = [await _told(alert_targets.slack(sender, url, notice)) for url in targets.slacks]
        outcomes["slack"] = _together(told)
    if targets.emails:
        outcomes["email"] = await _told(alert_targets.email(smtp, targets.emails, notice))
    return outcomes


def _together(outcomes: list[str]) -> str:
    """The outcome of several targets of a kind: "sent" when each took it, else what went
    wrong, and with how many of them when there were several."""
    failed = [o for o in outcomes if o != alert_targets.SENT]
    if not failed:
        return alert_targets.SENT
    said = "; ".join(dict.fromkeys(failed))
    return said if len(outcomes) == 1 else f"{len(failed)} of {len(outcomes)}: {said}"


async def _told(telling: Coroutine[Any, Any, str]) -> str:
    """A target's outcome, whatever happens: one target's surprise must leave neither the
    other targets nor the next alerts untold (each is told once, when its state changes)."""
    try:
        return await telling
    except Exception as exc:
        log.exception("an alert target failed unexpectedly")
        return f"could not be told: {type(exc).__name__}"


async def _noted(conn: Connection, alert: Alert, status: Status, outcomes: dict[str, str]) -> None:
    """Keep each target's outcome, and a summary with the alert."""
    for target, outcome in outcomes.items():
        if outcome != alert_targets.SENT:
            log.warning("alert %d (%s) to %s: %s", alert.id, status, target, outcome)
        params = {"id": alert.id, "status": status, "target": target, "outcome": outcome}
        await conn.execute(_Q["notice"], params)
    if outcomes:
        failed = [f"{t}: {o}" for t, o in outcomes.items() if o != alert_targets.SENT]
        summary = "; ".join(failed) or alert_targets.SENT
        await conn.execute(_Q["notified"], {"id": alert.id, "notified": summary})


async def check(conn: Connection) -> None:
    """Evaluate the rules, then tell the targets what fired or resolved."""
    opened, closed = await evaluate(conn)
    if opened or closed:
        sender = Sender()
        await sender.start()
        try:
            await notify(conn, sender, opened, closed)
        finally:
            await sender.close()
