"""The audit log page: who changed what (admins only)."""

from typing import Any

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from engine.control import audit
from ui.requests import database, signed_in

_PAGE = 100


@get("/audit", opt={"role": "admin"})
async def audit_page(
    request: Request[Any, Any, Any], before: FromQuery[int | None] = None
) -> Template:
    async with database(request) as conn:
        entries = await audit.recent(conn, limit=_PAGE, before=before)
    more = entries[-1].id if len(entries) == _PAGE else None
    return Template(
        "audit.html", context={"user": signed_in(request), "entries": entries, "more": more}
    )


handlers = [audit_page]
