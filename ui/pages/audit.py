"""The audit log page (admins only): who changed what, when, with the values before and after;
filtered by who, what and when, a page at a time."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from engine.control import audit
from ui import inputs
from ui.requests import database, signed_in

_PAGE = 50
PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


@get("/audit", opt={"role": "admin"})
async def audit_page(
    request: Request[Any, Any, Any],
    who: FromQuery[str] = "",
    what: FromQuery[str] = "",
    period: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    before: FromQuery[int | None] = None,
) -> Template:
    start = datetime.now(UTC) - PERIODS[period] if period in PERIODS else inputs.moment(since)
    filters = audit.Filters(
        who or None, what or None, start, None if period else inputs.moment(until)
    )
    async with database(request) as conn:
        entries = await audit.search(conn, filters, limit=_PAGE, before=before)
        actors, kinds = await audit.choices(conn)
    if who and who not in actors:  # (a revoked token, a typed address: the filter still shows)
        actors.append(who)
    asked = {"who": who, "what": what, "period": period, "since": since, "until": until}
    kept = {k: v for k, v in asked.items() if v}
    older = None
    if len(entries) == _PAGE:
        older = "/audit?" + urlencode({**kept, "before": entries[-1].id})
    context = {"user": signed_in(request), "entries": entries, "older": older,
               "actors": actors, "kinds": kinds, "asked": asked, "filtered": bool(kept),
               "newest": "/audit?" + urlencode(kept) if before is not None else None}  # fmt: skip
    return Template("audit.html", context=context)


handlers = [audit_page]
