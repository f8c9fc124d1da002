"""A source's page: its write key (copy, rotate), where SDKs send events, ready-to-paste
snippets; creating sources and switching them on and off. Changes go through
`engine.control.changes`, the same path as `sluice config apply`."""

from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import graph, stats, workspace
from engine.errors import ConfigError
from engine.specs import SourceSpec
from ui import cards
from ui.pages import connections
from ui.requests import changes, database, local_path, signed_in


class NewSource(msgspec.Struct):
    name: str = ""


class Switch(msgspec.Struct):
    enabled: bool = False
    back: str = "/connections"  # the page to return to


@get("/sources/{source_id:uuid}")
async def source_page(request: Request[Any, Any, Any], source_id: FromPath[UUID]) -> Template:
    return Template("source.html", context=await _context(request, source_id))


@get("/sources/{source_id:uuid}/activity")
async def source_activity(
    request: Request[Any, Any, Any], source_id: FromPath[UUID]
) -> Response[Any]:
    """The page's activity card alone, which the page polls."""
    return await cards.card(
        request, "source.html", "activity", f"/sources/{source_id}",
        lambda: _context(request, source_id),
    )  # fmt: skip


async def _context(request: Request[Any, Any, Any], source_id: UUID) -> dict[str, Any]:
    user = signed_in(request)
    async with database(request) as conn:
        spec: SourceSpec | None = await workspace.entry(conn, "source", source_id)
        if spec is None:
            raise NotFoundException("there is no such source (any more)")
        shape = await graph.load(conn)
        activity = await stats.recent(conn, source=source_id)
    node = next(s for s in shape.sources if s.id == source_id)
    return {
        "user": user,
        "source": node,
        "spec": spec,
        "activity": activity,
        # A write key is not a password (it ships inside websites and apps), but it lets
        # anyone send events as this source: viewers see its end only.
        "write_key": spec.write_key if user.may("editor") else None,
        "key_hint": (spec.write_key or "")[-4:],
        "gateway_url": request.app.state.gateway_url.rstrip("/"),
        "destinations": [
            (d, edge) for edge in shape.connections if edge.source_id == source_id
            for d in shape.destinations if d.id == edge.destination_id
        ],
    }  # fmt: skip


@post("/sources", status_code=303)
async def create_source(
    request: Request[Any, Any, Any], data: URLEncodedBody[NewSource]
) -> Response[Any]:
    try:
        async with database(request) as conn:
            made = await changes(request, conn).create_source(data.name.strip())
    except ConfigError as exc:
        return await connections.overview(request, exc.message)
    return Redirect(f"/sources/{made}", status_code=303)


@post("/sources/{source_id:uuid}/key", status_code=303)
async def rotate_key(request: Request[Any, Any, Any], source_id: FromPath[UUID]) -> Response[Any]:
    """A new write key; the old one stops working at once (every gateway reloads)."""
    async with database(request) as conn:
        await changes(request, conn).rotate_key(source_id)
    return Redirect(f"/sources/{source_id}", status_code=303)


@post("/sources/{source_id:uuid}/enabled", status_code=303)
async def switch_source(
    request: Request[Any, Any, Any], source_id: FromPath[UUID], data: URLEncodedBody[Switch]
) -> Response[Any]:
    return await switched(request, "source", source_id, data)


async def switched(
    request: Request[Any, Any, Any],
    kind: Literal["source", "destination", "connection"],
    entry_id: UUID,
    data: Switch,
) -> Response[Any]:
    """Switch a source, destination or connection on or off, then back to the page."""
    async with database(request) as conn:
        await changes(request, conn).switch(kind, entry_id, data.enabled)
    return Redirect(local_path(data.back), status_code=303)


@post("/sources/{source_id:uuid}/delete", status_code=303)
async def delete_source(
    request: Request[Any, Any, Any], source_id: FromPath[UUID]
) -> Response[Any]:
    return await deleted(request, "source", source_id)


async def deleted(
    request: Request[Any, Any, Any],
    kind: Literal["source", "destination"],
    entry_id: UUID,
) -> Response[Any]:
    """Delete a source or destination (with its connections), then back to the connections."""
    async with database(request) as conn:
        await changes(request, conn).delete(kind, entry_id)
    return Redirect("/connections", status_code=303)


handlers = [source_page, source_activity, create_source, rotate_key, switch_source, delete_source]
