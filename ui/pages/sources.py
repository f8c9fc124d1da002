"""A source's page: its write key (copy, rotate), where SDKs send events, ready-to-paste
snippets; creating sources and switching them on and off. Changes go through the workspace
store's `apply`, the same path as `sluice config apply`."""

from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from engine import specs
from engine.control import audit, graph, stats, workspace
from engine.errors import ConfigError
from engine.specs import SourceSpec, WorkspaceSpec
from ui import cards
from ui.pages import connections
from ui.requests import database, local_path, signed_in


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
    user = signed_in(request)
    name = data.name.strip()
    try:
        async with database(request) as conn:
            if any(s.name == name for s in (await graph.load(conn)).sources):
                raise ConfigError(f"source {name}", "there is a source of that name already")
            await workspace.apply(conn, WorkspaceSpec(sources=[SourceSpec(name=name)]))
            made = next(s for s in (await graph.load(conn)).sources if s.name == name)
            await audit.record(conn, user.email, "source.create", name)
    except ConfigError as exc:
        return await connections.overview(request, exc.message)
    return Redirect(f"/sources/{made.id}", status_code=303)


@post("/sources/{source_id:uuid}/key", status_code=303)
async def rotate_key(request: Request[Any, Any, Any], source_id: FromPath[UUID]) -> Response[Any]:
    """A new write key; the old one stops working at once (every gateway reloads)."""
    user = signed_in(request)
    async with database(request) as conn:
        spec: SourceSpec | None = await workspace.entry(conn, "source", source_id)
        if spec is None:
            raise NotFoundException("there is no such source (any more)")
        new = msgspec.structs.replace(spec, write_key=specs.new_write_key())
        await workspace.apply(conn, WorkspaceSpec(sources=[new]))
        await audit.record(conn, user.email, "source.rotate_key", spec.name)
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
    user = signed_in(request)
    async with database(request) as conn:
        name = await workspace.switch(conn, kind, entry_id, data.enabled)
        if name is None:
            raise NotFoundException(f"there is no such {kind} (any more)")
        await audit.record(conn, user.email, f"{kind}.{'enable' if data.enabled else 'disable'}",
                           name)  # fmt: skip
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
    user = signed_in(request)
    async with database(request) as conn:
        spec = await workspace.entry(conn, kind, entry_id)
        if spec is None or not await workspace.delete(conn, kind, spec.name):
            raise NotFoundException(f"there is no such {kind} (any more)")
        await audit.record(conn, user.email, f"{kind}.delete", spec.name)
    return Redirect("/connections", status_code=303)


handlers = [source_page, source_activity, create_source, rotate_key, switch_source, delete_source]
