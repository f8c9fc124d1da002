"""Rejected at the gateway: the messages it refused out of a request (over the message size
limit), newest first, each with the first kilobytes of what was sent. The same store as
`sluice rejected`."""

from typing import Any

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from engine.control import graph
from engine.store import rejections
from ui.requests import database, signed_in

_PAGE = 200


@get("/rejected")
async def rejected_page(request: Request[Any, Any, Any], source: FromQuery[str] = "") -> Template:
    async with database(request) as conn:
        shape = await graph.load(conn)
        names = [s.name for s in shape.sources]
        chosen = source if source in names else ""
        refused = await rejections.newest(conn, chosen or None, _PAGE)
    return Template(
        "rejected.html",
        context={"user": signed_in(request), "refused": refused, "sources": names,
                 "source": chosen, "page": _PAGE, "head_bytes": rejections.HEAD_BYTES},
    )  # fmt: skip


handlers = [rejected_page]
