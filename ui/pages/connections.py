"""The connections page — sources on one side, destinations on the other, lines between — and
a connection's own page: its transformation and the destination's event filters."""

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import graph, onboarding, stats, workspace
from engine.errors import ConfigError
from engine.specs import ConnectionSpec, DestinationSpec
from ui.requests import changes, database, signed_in

FILTERS = {
    "disable": "every event",
    "whitelistedEvents": "only the track events named below",
    "blacklistedEvents": "every event but the track events named below",
}


class ConnectionForm(msgspec.Struct):
    transformation: str = ""  # a transformation's name; empty: none
    filter: str = "disable"
    names: str = ""  # event names, one per line


@get("/connections")
async def connections_page(
    request: Request[Any, Any, Any], password: FromQuery[str] = ""
) -> Template:
    return await overview(request, changed_password=password == "changed")


async def overview(
    request: Request[Any, Any, Any], error: str | None = None, changed_password: bool = False
) -> Template:
    """The connections page; with `error`, as the answer to a change it refused."""
    async with database(request) as conn:
        workspace_graph = await graph.load(conn)
        activity = await stats.recent(conn)
        steps = await onboarding.first_steps(conn, workspace_graph)
    return Template(
        "connections.html",
        context={"user": signed_in(request), "graph": workspace_graph, "activity": activity,
                 "steps": steps, "error": error, "changed_password": changed_password},
        status_code=400 if error else 200,
    )  # fmt: skip


async def _load(
    request: Request[Any, Any, Any], connection_id: UUID
) -> tuple[ConnectionSpec, DestinationSpec, graph.Graph]:
    async with database(request) as conn:
        spec: ConnectionSpec | None = await workspace.entry(conn, "connection", connection_id)
        if spec is None:
            raise NotFoundException("there is no such connection (any more)")
        shape = await graph.load(conn)
        target = next(d for d in shape.destinations if d.name == spec.destination)
        destination: DestinationSpec = await workspace.entry(conn, "destination", target.id)
    return spec, destination, shape


def _page(
    request: Request[Any, Any, Any],
    connection_id: UUID,
    spec: ConnectionSpec,
    destination: DestinationSpec,
    shape: graph.Graph,
    error: str | None = None,
) -> Template:
    config = destination.config
    option = config.get("eventFilteringOption") or "disable"
    rows = config.get(option) if option in ("whitelistedEvents", "blacklistedEvents") else []
    names = [r.get("eventName", "") for r in rows or [] if isinstance(r, dict)]
    node = next(d for d in shape.destinations if d.name == spec.destination)
    return Template(
        "connection.html",
        context={
            "user": signed_in(request), "connection_id": connection_id, "spec": spec,
            "source": next(s for s in shape.sources if s.name == spec.source),
            "destination": node, "transformations": shape.transformations,
            "filters": FILTERS, "option": option, "names": "\n".join(names), "error": error,
            # other sources whose events the same filters apply to
            "shared": sum(1 for e in shape.connections if e.destination_id == node.id) - 1,
        },
        status_code=400 if error else 200,
    )  # fmt: skip


@get("/connections/{connection_id:uuid}")
async def connection_page(
    request: Request[Any, Any, Any], connection_id: FromPath[UUID]
) -> Template:
    return _page(request, connection_id, *await _load(request, connection_id))


@post("/connections/{connection_id:uuid}", status_code=303)
async def update_connection(
    request: Request[Any, Any, Any],
    connection_id: FromPath[UUID],
    data: URLEncodedBody[ConnectionForm],
) -> Response[Any]:
    """The transformation of this connection and the event filters of its destination (in
    RudderStack, filters belong to the destination: every source sending there gets them)."""
    spec, destination, shape = await _load(request, connection_id)
    if data.filter not in FILTERS:
        return _page(request, connection_id, spec, destination, shape, "pick one of the filters")
    names = [n.strip() for n in data.names.splitlines() if n.strip()]
    async with database(request) as conn:
        try:
            await changes(request, conn).shape(
                spec, destination, data.transformation or None, data.filter, names
            )
        except ConfigError as exc:
            return _page(request, connection_id, spec, destination, shape, exc.message)
    return Redirect(f"/connections/{connection_id}?saved=1", status_code=303)


@post("/connections/{connection_id:uuid}/delete", status_code=303)
async def delete_connection(
    request: Request[Any, Any, Any], connection_id: FromPath[UUID]
) -> Response[Any]:
    """Remove the connection; jobs it made already are still delivered."""
    spec, _, _ = await _load(request, connection_id)
    async with database(request) as conn:
        await changes(request, conn).disconnect(spec.source, spec.destination)
    return Redirect("/connections", status_code=303)


handlers = [connections_page, connection_page, update_connection, delete_connection]
