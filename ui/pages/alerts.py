"""The Alerts page: every destination's rule, whether it fires, and the alerts so far with what
each target made of them; the SMTP server alerts are mailed through (set by an admin). The
rules themselves are edited on the destination pages (and in the workspace file). Also the
banner every page of the control plane shows while an alert fires."""

from typing import Any, cast, get_args

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import alert_targets, alerts, overview, settings
from engine.db import Connection
from engine.errors import ConfigError
from ui.requests import changes, database, signed_in

_HISTORY = 50  # alerts a page


class SmtpForm(msgspec.Struct):
    host: str = ""
    port: str = "587"
    security: str = "starttls"
    user: str = ""
    password: str = ""  # left empty: the saved one stays
    sender: str = ""
    remove: bool = False


@get("/alerts/banner")
async def banner(request: Request[Any, Any, Any]) -> Response[Any]:
    """What is firing, for the banner every page loads (and refreshes)."""
    if not request.headers.get("hx-request"):
        return Redirect("/", status_code=303)
    async with database(request) as conn:
        firing = await alerts.active(conn)
    return Template("alert_banner.html", context={"firing": firing})


@get("/alerts")
async def alerts_page(
    request: Request[Any, Any, Any], before: FromQuery[int | None] = None
) -> Template:
    return await _page(request, before=before)


async def _page(
    request: Request[Any, Any, Any], *, before: int | None = None, status: int = 200,
    smtp_error: str | None = None, form: SmtpForm | None = None, tried: str | None = None,
    tried_ok: bool = False,
) -> Template:  # fmt: skip
    user = signed_in(request)
    async with database(request) as conn:
        rules = await alerts.rules(conn)
        history = await alerts.recent(conn, limit=_HISTORY, before=before)
        smtp = await settings.smtp(conn) if user.may("admin") else None
    older = history[-1].id if len(history) == _HISTORY else None
    context = {"user": user, "rules": rules, "history": history, "older": older,
               "paged": before is not None, "smtp": smtp, "smtp_error": smtp_error,
               "form": form, "tried": tried, "tried_ok": tried_ok,
               "warn_days": overview.WARN_DAYS}  # fmt: skip
    return Template("alerts.html", context=context, status_code=status)


@post("/alerts/smtp", opt={"role": "admin"}, status_code=303)
async def save_smtp(
    request: Request[Any, Any, Any], data: URLEncodedBody[SmtpForm]
) -> Response[Any]:
    """The SMTP server alert emails go through (the password kept when left empty)."""
    async with database(request) as conn:
        try:
            await changes(request, conn).set_smtp(None if data.remove else await _smtp(conn, data))
        except ConfigError as exc:
            return await _page(request, status=400, smtp_error=exc.message, form=data)
    return Redirect("/alerts?saved=smtp#smtp", status_code=303)


@post("/alerts/smtp/test", opt={"role": "admin"}, status_code=200)
async def test_smtp(request: Request[Any, Any, Any]) -> Template:
    """A test email to the admin who asks, through the SMTP server saved."""
    to = signed_in(request).email
    async with database(request) as conn:
        server = await settings.smtp(conn)
    # No connection is held while the server is waited for (up to its timeout, several times
    # over): a slow SMTP server must not drain the pool every page needs.
    outcome = await alert_targets.send_test_email(server, to)
    async with database(request) as conn:
        await changes(request, conn).record("settings.smtp_test", to, outcome=outcome)
    sent = outcome == alert_targets.SENT
    return await _page(request, tried=f"Test email sent to {to}." if sent else outcome,
                       tried_ok=sent)  # fmt: skip


async def _smtp(conn: Connection, data: SmtpForm) -> settings.Smtp:
    saved = await settings.smtp(conn)
    try:
        port = int(data.port)
    except ValueError:
        raise ConfigError("smtp", f"the port is a number, not {data.port!r}") from None
    if data.security not in get_args(settings.Security):
        raise ConfigError("smtp", "choose STARTTLS, TLS or none")
    return settings.Smtp(
        host=data.host.strip(), port=port, security=cast(settings.Security, data.security),
        user=data.user.strip(), password=data.password, sender=data.sender.strip(),
    ).keeping_password(saved)  # fmt: skip


handlers = [banner, alerts_page, save_smtp, test_smtp]
