"""Where an alert is told that it fired or resolved: a webhook (a JSON POST), a Slack incoming
webhook (a message) and email (through the SMTP server an admin sets, `settings.Smtp`). Each
send says what became of it: "sent", or why not, in words that hold no secret (a webhook's URL
holds its token: it is never named). Webhooks and Slack are posted by the delivery sender, so
that a failure reads as a delivery's does.

Email goes through the standard library's smtplib in a thread rather than an asyncio client
(aiosmtplib): an alert is mailed a few times a day at most, a blocking send in a thread costs
nothing at that rate, and the appliance takes on no dependency for it.
"""

import asyncio
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal
from uuid import UUID

from engine.control.settings import Smtp
from engine.destinations.base import Request
from engine.pipeline.delivery.sender import MalformedRequest, Sender, TransportError

TIMEOUT = 10.0  # seconds a target gets to take a notice
Status = Literal["firing", "resolved"]
SENT = "sent"


@dataclass(frozen=True)
class Notice:
    """An alert that fired or resolved, as its targets are told."""

    status: Status
    kind: str
    message: str
    destination_id: UUID | None  # None: a certificate's alert (a host's, named in the message)
    started_at: datetime
    ended_at: datetime | None

    def when(self) -> str:
        start = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        if self.ended_at is None:
            return f"firing since {start}"
        return f"fired {start}, resolved {self.ended_at:%Y-%m-%d %H:%M} UTC"


async def webhook(sender: Sender, url: str, notice: Notice) -> str:
    body = {"status": notice.status, "alert": notice.kind, "message": notice.message,
            "destination_id": str(notice.destination_id) if notice.destination_id else None,
            "started_at": notice.started_at.isoformat(),
            "ended_at": notice.ended_at.isoformat() if notice.ended_at else None}  # fmt: skip
    return await _post(sender, url, body, "the webhook")


async def slack(sender: Sender, url: str, notice: Notice) -> str:
    """A Slack message: what happened, and since when."""
    icon = ":rotating_light:" if notice.status == "firing" else ":white_check_mark:"
    text = f"{icon} *Sluice alert {notice.status}*: {_slack_escaped(notice.message)}"
    return await _post(sender, url, {"text": f"{text}\n_{notice.when()}_"}, "Slack")


def _slack_escaped(text: str) -> str:
    """Text Slack shows as written (its mrkdwn reads `<…>` as links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _post(sender: Sender, url: str, body: Any, who: str) -> str:
    """Sent as deliveries are, so that a failure reads as theirs do ("could not connect to
    host:443: connection refused"), the URL (which holds a token) never named."""
    try:
        answer = await sender.send(Request("POST", url, body=body), TIMEOUT)
    except (TransportError, MalformedRequest) as exc:
        return f"{who}: {exc}"
    return SENT if 200 <= answer.status < 300 else f"{who} answered {answer.status}"


async def email(server: Smtp | None, to: list[str], notice: Notice) -> str:
    subject = f"Sluice alert {notice.status}: {notice.message}"
    return await _send(server, to, subject, f"{notice.message}\n\n{notice.when().capitalize()}.")


async def send_test_email(server: Smtp | None, to: str) -> str:
    """A test message, so that an admin sees the SMTP settings work before an alert needs them."""
    said = "Alerts will be mailed through this server."
    return await _send(server, [to], "Sluice test email", said)


async def _send(server: Smtp | None, to: list[str], subject: str, text: str) -> str:
    if server is None:
        return "no SMTP server is set (the Alerts page)"
    try:
        message = EmailMessage()
        message["From"], message["To"] = server.sender, ", ".join(to)
        message["Subject"] = _one_line(subject)[:200]  # (a name may hold a line break)
        message.set_content(f"{text}\n\n-- Sluice\n")
    except ValueError as exc:  # an address the email library refuses to write
        return f"the message could not be written: {exc}"
    try:
        await asyncio.to_thread(_mail, server, message)
    except smtplib.SMTPResponseException as exc:
        return f"the SMTP server refused it ({exc.smtp_code})"
    except (smtplib.SMTPException, OSError, UnicodeError) as exc:  # (non-ASCII credentials)
        return f"the SMTP server did not take it: {type(exc).__name__}"
    return SENT


def _one_line(text: str) -> str:
    """`text` with its control characters (line breaks) as spaces: fit for a header."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)


def _mail(server: Smtp, message: EmailMessage) -> None:
    tls = ssl.create_default_context()
    smtp = (
        smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=tls)
        if server.security == "tls"
        else smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    )
    with smtp:
        if server.security == "starttls":
            smtp.starttls(context=tls)
        if server.user:
            smtp.login(server.user, server.password)
        smtp.send_message(message)
