"""The banner every page of the control plane shows while an alert fires (the rules are edited
on the destination pages)."""

from typing import Any

from litestar import Request, Response, get
from litestar.response import Redirect, Template

from engine.control import alerts
from ui.requests import database


@get("/alerts/banner")
async def banner(request: Request[Any, Any, Any]) -> Response[Any]:
    """What is firing, for the banner every page loads (and refreshes)."""
    if not request.headers.get("hx-request"):
        return Redirect("/", status_code=303)
    async with database(request) as conn:
        firing = await alerts.active(conn)
    return Template("alert_banner.html", context={"firing": firing})


handlers = [banner]
