"""Parts of a page that refresh themselves (htmx polling): the part is a `{% block %}` of the
page's template, rendered alone (jinja2-fragments) for the page's poll."""

from collections.abc import Awaitable, Callable
from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

STOP_POLLING = 286  # htmx ends an `every …` trigger on this status


async def card(
    request: Request[Any, Any, Any],
    template: str,
    block: str,
    page: str,
    context: Callable[[], Awaitable[dict[str, Any]]],
) -> Response[Any]:
    """`block` of `template` for a page polling it. Opened as a page of its own (a bookmark,
    a return after signing in), it is `page` instead; once what it shows is gone (deleted in
    another tab), the page stops polling and keeps what it last showed."""
    if not request.headers.get("hx-request"):
        return Redirect(page, status_code=303)
    try:
        values = await context()
    except NotFoundException:
        return Response(content=b"", status_code=STOP_POLLING)
    return HTMXBlockTemplate(template_name=template, block_name=block, context=values)
