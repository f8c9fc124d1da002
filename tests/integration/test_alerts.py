"""Alert rules against a real PostgreSQL and real targets: an alert fires while its condition
holds, once, and resolves when it clears — each time a notice to the rule's webhook, Slack
incoming webhook (a local HTTP double) and email (a local SMTP server, aiosmtpd), whose outcomes
the history keeps."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar.testing import AsyncTestClient

from engine import specs
from engine.control import alert_targets, alerts, audit, settings, workspace
from engine.control.alerts import Rule
from engine.db import connection
from engine.errors import ConfigError
from engine.pipeline.delivery.sender import Sender
from engine.specs import AlertConditions
from engine.store import counters
from tests.conftest import apply_config
from tests.integration.test_events import WORKSPACE
from tests.integration.test_web_activity import counted, ids
from tests.integration.test_web_api import bearer
from tests.integration.test_web_home import certified, day
from tests.integration.test_web_security import app_with
from tests.integration.test_workspace import sluice
from tests.servers import free_port
from tests.sink import Answer, Sink


def evaluated(database_url: str) -> tuple[list[alerts.Alert], list[alerts.Alert]]:
    async def go() -> tuple[list[alerts.Alert], list[alerts.Alert]]:
        sender = Sender()
        await sender.start()
        try:
            async with connection(database_url) as conn:
                opened, closed = await alerts.evaluate(conn)
                await alerts.notify(conn, sender, opened, closed)
                return opened, closed
        finally:
            await sender.close()

    return asyncio.run(go())


def ruled(database_url: str, rule: Rule) -> None:
    async def go() -> None:
        async with connection(database_url) as conn:
            await alerts.save(conn, rule)

    asyncio.run(go())


def aged(database_url: str, minutes: int) -> None:
    """Every counter so far, `minutes` older."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE stats_minute SET minute = minute - make_interval(mins => %s)",
                     (minutes,))  # fmt: skip


def test_a_failure_share_above_the_rule_fires_once_and_resolves(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    hook: UUID = at["hook"]
    with Sink() as sink:
        ruled(database_url, Rule(destination_id=hook, failure_percent=10, window_minutes=15,
                                 webhook_url=f"{sink.url}/alert"))  # fmt: skip
        settled = counters.Counts(
            {(at["web"], hook, "delivered"): 20, (at["web"], hook, "aborted"): 5}
        )
        asyncio.run(counted(database_url, settled))
        opened, closed = evaluated(database_url)
        assert [a.kind for a in opened] == ["failures"] and closed == []
        assert opened[0].message == (
            "hook: 5 of 25 events failed in the last 15 min (20%, above 10%)"
        )
        assert evaluated(database_url) == ([], [])  # still firing: not again
        aged(database_url, 20)  # the failures are now outside the window
        opened, closed = evaluated(database_url)
        assert opened == [] and [a.kind for a in closed] == ["failures"]
        posts = sink.wait_for(2)
    assert [p.json()["status"] for p in posts] == ["firing", "resolved"]
    assert posts[0].json()["message"].startswith("hook: 5 of 25")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT notified, ended_at IS NOT NULL FROM alerts").fetchall()
    assert rows == [("sent", True)]


def test_too_few_events_or_a_low_share_do_not_fire(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    ruled(database_url, Rule(destination_id=at["hook"], failure_percent=10))
    asyncio.run(counted(database_url, counters.Counts({(at["web"], at["hook"], "aborted"): 3})))
    assert evaluated(database_url) == ([], [])  # 3 of 3 failed: too few to judge
    asyncio.run(counted(database_url, counters.Counts({(at["web"], at["hook"], "delivered"): 97})))
    assert evaluated(database_url) == ([], [])  # 3% is below the rule's 10%


def test_nothing_delivered_while_events_are_due_fires_and_a_delivery_resolves_it(
    database_url: str,
) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    hook = at["hook"]
    no_destination = UUID(int=0)
    ruled(database_url, Rule(destination_id=hook, silence_minutes=10))
    # received just now: may not be delivered yet, so not due
    asyncio.run(
        counted(database_url, counters.Counts({(at["web"], no_destination, "received"): 30}))
    )
    assert evaluated(database_url) == ([], [])
    aged(database_url, 5)  # now 5 minutes old, and still nothing delivered
    [silence], _ = evaluated(database_url)
    assert silence.message == "hook: nothing delivered for 10 min although 30 events were due"
    asyncio.run(counted(database_url, counters.Counts({(at["web"], hook, "delivered"): 30})))
    _, [resolved] = evaluated(database_url)
    assert resolved.id == silence.id and resolved.notified is None  # (no webhook: no post)


def test_a_rule_the_database_would_refuse_is_explained() -> None:
    for rule, words in (
        (Rule(destination_id=UUID(int=1), failure_percent=0), "percentage above 0"),
        (Rule(destination_id=UUID(int=1), window_minutes=0), "1 to 1440 minutes"),
        (Rule(destination_id=UUID(int=1), silence_minutes=1), "5 minutes to 7 days"),
        (Rule(destination_id=UUID(int=1), webhook_url="ftp://x"), r"an http\(s\) URL"),
        (Rule(destination_id=UUID(int=1), slack_url="slack.com/x"), r"Slack webhook is an http"),
        (Rule(destination_id=UUID(int=1), email_to=["oncall"]), "not an email address: 'oncall'"),
        (
            Rule(destination_id=UUID(int=1), email_to=[f"o{i}@example.com" for i in range(21)]),
            "at most 20 addresses",
        ),
    ):
        with pytest.raises(ConfigError, match=words):
            rule.check()


class _Mailbox:
    """An SMTP server's handler that keeps every message it takes."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(content)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[_Mailbox, int]]:
    """A real SMTP server on loopback (no TLS, no login): its mailbox and port."""
    mailbox, port = _Mailbox(), free_port()
    server = Controller(mailbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield mailbox, port
    finally:
        server.stop()


def configured(database_url: str, smtp: settings.Smtp | None, rule: Rule) -> None:
    async def go() -> None:
        async with connection(database_url) as conn:
            await settings.set_smtp(conn, smtp)
            await alerts.save(conn, rule)

    asyncio.run(go())


def history(database_url: str) -> list[alerts.Alert]:
    async def go() -> list[alerts.Alert]:
        async with connection(database_url) as conn:
            return await alerts.recent(conn)

    return asyncio.run(go())


def failing(database_url: str, at: dict[str, UUID]) -> None:
    """A quarter of the hook's deliveries failed just now."""
    settled = counters.Counts({(at["web"], at["hook"], "delivered"): 15,
                               (at["web"], at["hook"], "aborted"): 5})  # fmt: skip
    asyncio.run(counted(database_url, settled))


def test_slack_and_email_are_told_when_an_alert_fires_and_resolves(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    with Sink(lambda arrival: Answer(200, body="ok")) as slack, smtp_server() as (mailbox, port):
        server = settings.Smtp(host="127.0.0.1", port=port, security="none",
                               sender="sluice@example.com")  # fmt: skip
        configured(database_url, server, Rule(
            destination_id=at["hook"], failure_percent=10, slack_url=f"{slack.url}/services/T1",
            email_to=["oncall@example.com", "lead@example.com"],
        ))  # fmt: skip
        failing(database_url, at)
        evaluated(database_url)
        aged(database_url, 20)
        evaluated(database_url)
        posts = slack.wait_for(2)
    texts = [p.json()["text"] for p in posts]
    assert [p.path for p in posts] == ["/services/T1"] * 2
    assert texts[0].startswith(":rotating_light: *Sluice alert firing*: hook: 5 of 20 events")
    assert "_firing since " in texts[0]
    assert texts[1].startswith(":white_check_mark: *Sluice alert resolved*: hook: 5 of 20")
    assert "resolved" in texts[1].splitlines()[1]
    assert [envelope.rcpt_tos for envelope, _ in mailbox.messages] == [
        ["oncall@example.com", "lead@example.com"]] * 2  # fmt: skip
    subjects = [message["Subject"] for _, message in mailbox.messages]
    assert subjects[0].startswith("Sluice alert firing: hook: 5 of 20 events failed")
    assert subjects[1].startswith("Sluice alert resolved: hook: 5 of 20")
    first: Any = mailbox.messages[0][1]
    assert first["From"] == "sluice@example.com"
    assert "Firing since " in first.get_payload(decode=True).decode()
    [alert] = history(database_url)
    assert alert.ended_at is not None and alert.notified == "sent"
    assert alert.notices == [
        {"status": s, "target": t, "outcome": "sent"}
        for s in ("firing", "resolved") for t in ("email", "slack")
    ]  # fmt: skip


def test_slack_text_is_escaped_so_a_name_cannot_make_links_or_mentions(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    apply_config(
        database_url,
        """
destinations: [{name: "<!channel> & <x|y>", type: webhook, config: {webhookUrl: "https://x.io"}}]
""",
    )
    at = ids(database_url)
    dest = at["<!channel> & <x|y>"]
    with Sink() as slack:
        ruled(database_url, Rule(destination_id=dest, failure_percent=10,
                                 slack_url=f"{slack.url}/s"))  # fmt: skip
        settled = counters.Counts({(at["web"], dest, "aborted"): 20})
        asyncio.run(counted(database_url, settled))
        evaluated(database_url)
        [post] = slack.wait_for(1)
    assert "*: &lt;!channel&gt; &amp; &lt;x|y&gt;: 20 of 20 events" in post.json()["text"]


def test_each_target_that_did_not_take_a_notice_says_why(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    with Sink(lambda arrival: Answer(404, body="no_service")) as slack:
        port = free_port()
        closed = f"http://127.0.0.1:{port}/hook?token=secret-in-url"
        configured(database_url, None, Rule(
            destination_id=at["hook"], failure_percent=10, webhook_url=closed,
            slack_url=f"{slack.url}/services/gone", email_to=["oncall@example.com"],
        ))  # fmt: skip
        failing(database_url, at)
        evaluated(database_url)
    [alert] = history(database_url)
    outcomes = {n["target"]: n["outcome"] for n in alert.notices}
    assert outcomes == {
        "webhook": f"the webhook: could not connect to 127.0.0.1:{port}: connection refused",
        "slack": "Slack answered 404",
        "email": "no SMTP server is set (the Alerts page)",
    }
    assert alert.notified is not None and "secret-in-url" not in alert.notified
    assert alert.notified == "; ".join(f"{t}: {outcomes[t]}" for t in ("webhook", "slack", "email"))


def test_an_smtp_server_that_refuses_is_noted(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    with smtp_server() as (_, port):
        server = settings.Smtp(host="127.0.0.1", port=port, security="none", user="alerts",
                               password="smtp-secret", sender="sluice@example.com")  # fmt: skip
        configured(database_url, server, Rule(destination_id=at["hook"], failure_percent=10,
                                              email_to=["oncall@example.com"]))  # fmt: skip
        failing(database_url, at)
        evaluated(database_url)
    [alert] = history(database_url)
    [notice] = alert.notices
    # (the server offers no login without TLS: the notice says so, and holds no password)
    assert notice["outcome"] == "the SMTP server did not take it: SMTPNotSupportedError"


def test_an_email_the_library_or_server_cannot_take_is_noted_never_raised() -> None:
    """A line break in the message (a destination's name) stays out of the headers, and an
    address or credentials the email library refuses make an outcome: the alerts after it are
    still told."""
    notice = alert_targets.Notice("firing", "failures", "hooks\r\nBcc: x@evil.example failing",
                                  UUID(int=1), datetime.now(UTC), None)  # fmt: skip
    with smtp_server() as (mailbox, port):
        server = settings.Smtp(host="127.0.0.1", port=port, security="none",
                               sender="sluice@example.com")  # fmt: skip
        assert asyncio.run(alert_targets.email(server, ["a@example.com"], notice)) == "sent"
        [(envelope, message)] = mailbox.messages
        assert envelope.rcpt_tos == ["a@example.com"]
        assert message["Subject"] == "Sluice alert firing: hooks  Bcc: x@evil.example failing"
        assert message["Bcc"] is None
        bad_sender = settings.Smtp(host="127.0.0.1", port=port, security="none",
                                   sender="a@example.com\nBcc: x@evil.example")  # fmt: skip
        told = asyncio.run(alert_targets.email(bad_sender, ["a@example.com"], notice))
        assert told.startswith("the message could not be written")
        accented = settings.Smtp(host="127.0.0.1", port=port, security="none", user="ünïcode",
                                 password="pässword", sender="sluice@example.com")  # fmt: skip
        told = asyncio.run(alert_targets.email(accented, ["a@example.com"], notice))
        assert told.startswith("the SMTP server did not take it")
    assert len(mailbox.messages) == 1


async def test_an_admin_token_sets_the_smtp_server_through_the_api_its_password_kept_masked(
    database_url: str,
) -> None:
    app = await app_with(database_url, "admin", WORKSPACE, "editor")
    server = {"host": "smtp.example.com", "port": 465, "security": "tls", "user": "alerts",
              "password": "smtp-api-secret", "sender": "sluice@example.com"}  # fmt: skip
    async with AsyncTestClient(app) as client:
        client.headers.update(await bearer(database_url, "editor"))
        assert (await client.put("/api/v1/settings/smtp", json=server)).status_code == 403
        client.headers.update(await bearer(database_url, "admin"))
        assert (await client.get("/api/v1/settings/smtp")).json() is None
        saved = await client.put("/api/v1/settings/smtp", json=server)
        assert saved.status_code == 200 and saved.json() == {**server, "password": "****"}
        moved = await client.put("/api/v1/settings/smtp", json={**server, "port": 2465,
                                                                "password": "****"})  # fmt: skip
        assert moved.status_code == 400  # (the password goes only where it was typed for)
        assert "type the password again" in moved.json()["message"]
        kept_for_it = await client.put("/api/v1/settings/smtp", json={
            **server, "sender": "alerts@example.com", "password": "****"})  # fmt: skip
        assert kept_for_it.json()["sender"] == "alerts@example.com"
        refused = await client.put("/api/v1/settings/smtp", json={**server, "port": 0})
        assert refused.status_code == 400 and "65535" in refused.json()["message"]
        async with connection(database_url) as conn:
            kept = await settings.smtp(conn)
            entries = await audit.search(conn, audit.Filters(what="settings"))
        assert kept is not None and kept.password == "smtp-api-secret"  # ("****" kept it)
        assert [e.after for e in entries] == [  # newest first; what changed
            {"sender": "alerts@example.com"},
            {**server, "password": "****"},
        ]
        assert "smtp-api-secret" not in str(entries)
        assert (await client.delete("/api/v1/settings/smtp")).status_code == 204
        assert (await client.get("/api/v1/settings/smtp")).json() is None


def test_a_backup_carries_the_smtp_server_over(
    database_url: str, other_database_url: str, tmp_path: Path
) -> None:
    server = settings.Smtp(host="smtp.example.com", port=465, security="tls", user="alerts",
                           password="smtp-backup-secret", sender="sluice@example.com")  # fmt: skip
    apply_config(database_url, WORKSPACE)
    configured(database_url, server, Rule(destination_id=ids(database_url)["hook"]))
    file = tmp_path / "sluice.backup"
    assert sluice(database_url, "backup", str(file)).returncode == 0
    restored = sluice(other_database_url, "restore", str(file))
    assert restored.returncode == 0, restored.stderr

    async def smtp() -> settings.Smtp | None:
        async with connection(other_database_url) as conn:
            return await settings.smtp(conn)

    assert asyncio.run(smtp()) == server


def test_the_workspace_file_carries_a_rule_s_slack_and_email_targets(database_url: str) -> None:
    apply_config(database_url, WORKSPACE)
    apply_config(
        database_url,
        """
destinations:
  - name: hook
    type: webhook
    config: {webhookUrl: "https://hook.example.com/in"}
    alerts: {failure_percent: 5, slack_url: "https://hooks.slack.com/services/T/B/x",
             email_to: [oncall@example.com, lead@example.com]}
""",
    )

    async def exported() -> specs.WorkspaceSpec:
        async with connection(database_url) as conn:
            return await workspace.export(conn)

    [hook] = [d for d in asyncio.run(exported()).destinations if d.name == "hook"]
    assert hook.alerts == AlertConditions(
        failure_percent=5, slack_url="https://hooks.slack.com/services/T/B/x",
        email_to=["oncall@example.com", "lead@example.com"],
    )  # fmt: skip


def test_a_certificate_close_to_expiring_fires_once_with_no_rule_and_resolves_when_renewed(
    database_url: str,
) -> None:
    """Told to every target the rules name, each once: two rules share a webhook and an
    address."""
    apply_config(database_url, WORKSPACE)
    at = ids(database_url)
    certified(database_url, ("gw-1", 10, "gateway", "1 second", 30),
              ("gw-2", 11, "gateway", "1 second", 10), ("gw-2", 12, "web", "1 second", 60),
              ("gw-3", 13, "web", "1 second", -1))  # fmt: skip
    with Sink() as hooks, smtp_server() as (mailbox, port):
        server = settings.Smtp(host="127.0.0.1", port=port, security="none",
                               sender="sluice@example.com")  # fmt: skip
        configured(database_url, server, Rule(destination_id=at["hook"], failure_percent=50,
                   webhook_url=f"{hooks.url}/a", email_to=["oncall@example.com"]))  # fmt: skip
        configured(database_url, server, Rule(
            destination_id=at["orders only"], silence_minutes=60, webhook_url=f"{hooks.url}/a",
            slack_url=f"{hooks.url}/slack", email_to=["oncall@example.com", "lead@example.com"],
        ))  # fmt: skip
        opened, closed = evaluated(database_url)
        again = evaluated(database_url)
        certified(database_url, ("gw-2", 11, "gateway", "1 second", 90),
                  ("gw-3", 13, "web", "1 second", 90))  # fmt: skip
        reopened, resolved = evaluated(database_url)
        posts = hooks.wait_for(8)
    assert [(a.kind, a.host, a.destination_id) for a in opened] == [
        ("certificate", "gw-2", None), ("certificate", "gw-3", None)]  # fmt: skip
    assert [a.message for a in opened] == [
        f"the HTTPS certificate of gw-2 expires on {day(10)}",
        f"the HTTPS certificate of gw-3 expired on {day(-1)}",
    ]
    assert closed == [] and again == ([], []) and reopened == []
    assert [a.host for a in resolved] == ["gw-2", "gw-3"]
    statuses = sorted(p.json()["status"] for p in posts if p.path == "/a")
    assert statuses == ["firing", "firing", "resolved", "resolved"]
    texts = sorted(p.json()["text"].split("*")[1] for p in posts if p.path == "/slack")
    assert texts == ["Sluice alert firing"] * 2 + ["Sluice alert resolved"] * 2
    first = next(p.json() for p in posts if p.path == "/a")
    assert first["alert"] == "certificate" and first["destination_id"] is None
    assert "the HTTPS certificate of gw-" in first["message"]
    assert len(mailbox.messages) == 4
    assert {frozenset(envelope.rcpt_tos) for envelope, _ in mailbox.messages} == {
        frozenset({"oncall@example.com", "lead@example.com"})}  # fmt: skip
    told = history(database_url)
    assert [(a.host, a.destination, a.ended_at is not None, a.notified) for a in told] == [
        ("gw-3", "", True, "sent"), ("gw-2", "", True, "sent")]  # fmt: skip
    assert {(n["status"], n["target"], n["outcome"]) for n in told[0].notices} == {
        (s, t, "sent") for s in ("firing", "resolved") for t in ("email", "slack", "webhook")
    }  # fmt: skip


def test_a_certificate_alert_fires_with_no_rule_at_all_and_tells_no_one(
    database_url: str,
) -> None:
    certified(database_url, ("gw-1", 10, "web", "1 second", 14))
    opened, _ = evaluated(database_url)
    assert [a.host for a in opened] == ["gw-1"]
    [alert] = history(database_url)
    assert alert.ended_at is None and alert.notices == [] and alert.notified is None
    certified(database_url, ("gw-1", 10, "web", "1 second", 15))
    assert [a.host for a in evaluated(database_url)[1]] == ["gw-1"]


def test_a_certificate_alert_stays_open_while_its_host_is_not_heard_from(
    database_url: str,
) -> None:
    certified(database_url, ("gw-1", 10, "gateway", "1 second", 10))
    assert [a.host for a in evaluated(database_url)[0]] == ["gw-1"]
    with psycopg.connect(database_url, autocommit=True) as conn:  # the host goes down
        conn.execute("UPDATE heartbeats SET seen_at = now() - interval '1 hour'")
    assert evaluated(database_url) == ([], [])  # not resolved: nothing says it was renewed
    certified(database_url, ("gw-1", 11, "gateway", "1 second", None))  # back, plain HTTP
    assert [a.host for a in evaluated(database_url)[1]] == ["gw-1"]
