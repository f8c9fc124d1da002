"""The connections page: sources on one side, destinations on the other, lines between."""

from typing import Any

from litestar import Request, get
from litestar.response import Redirect, Template

from engine import graph
from ui.requests import pool_of, signed_in


@get("/")
async def home() -> Redirect:
    return Redirect("/connections", status_code=303)


@get("/connections")
async def connections_page(request: Request[Any, Any, Any]) -> Template:
    async with pool_of(request).connection() as conn:
        workspace = await graph.load(conn)
    return Template("connections.html", context={"user": signed_in(request), "graph": workspace})


handlers = [home, connections_page]
