"""The config API, JSON under /api/v1, for scripts and CI: the workspace as a whole (the same
document `sluice config apply/export` reads and writes) and its sources, destinations,
transformations and connections one by one. Bearer tokens (made by admins on the Users page)
authenticate; a token's role limits it as a person's does: viewers read (destination secrets
and alert webhooks masked, write keys shortened), editors change. Every change goes
through `engine.control.changes`: applied and recorded in the audit log under the token's
name, in one transaction.
"""

from functools import partial
from typing import Any, TypeVar

import litestar
import msgspec
from litestar import Request, Router
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from engine.control import rudderstack, settings, workspace
from engine.control.changes import Deletable
from engine.db import Connection
from engine.destinations.secrets import MASK
from engine.errors import ConfigError
from engine.pipeline.topology import Target
from engine.specs import (
    AlertConditions,
    ConnectionSpec,
    DeliveryPolicy,
    DestinationSpec,
    SourceSpec,
    TransformationSpec,
    WorkspaceSpec,
)
from ui.requests import changes, database, principal
from ui.security import ApiError

# What every operation may answer besides its result: documented, so that the document is the
# API (a test runs schemathesis against it).
_ERRORS = {
    status: ResponseSpec(ApiError, generate_examples=False, description=said)
    for status, said in [
        (400, "`invalid`: the request as it is cannot be carried out; the message says what is "
              "wrong, naming the field or entry"),
        (401, "`unauthenticated`: no valid bearer token"),
        (403, "`forbidden`: the token's role may not do this"),
        (404, "`refused`: no entry of that name"),
        (503, "`unavailable`: the database cannot be reached; try again shortly"),
    ]
}  # fmt: skip
get = partial(litestar.get, responses=_ERRORS)
put = partial(litestar.put, responses=_ERRORS)
post = partial(litestar.post, responses=_ERRORS)
delete = partial(litestar.delete, responses=_ERRORS)

Named = TypeVar("Named", SourceSpec, DestinationSpec)
S = TypeVar("S", SourceSpec, DestinationSpec, ConnectionSpec)


class Applied(msgspec.Struct):
    """What an apply did, entry by entry, and the write keys of sources it created."""

    # [kind, name, what happened: created, updated or unchanged] (typed as lists of text: a
    # tuple's schema is not one OpenAPI 3.1 takes)
    changes: list[list[str]]
    new_write_keys: dict[str, str]


# In the bodies of PUTs, a field left out keeps its current value (or the default, for a new
# entry): switching a source off must not clear its rate limit.


class SourceBody(msgspec.Struct, forbid_unknown_fields=True):
    write_key: str | UnsetType = UNSET  # a new source without one gets one made
    enabled: bool | UnsetType = UNSET
    rate_limit: int | UnsetType | None = UNSET


class DestinationBody(msgspec.Struct, forbid_unknown_fields=True):
    type: str | UnsetType = UNSET  # required for a new destination
    config: dict[str, Any] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    delivery: DeliveryPolicy | UnsetType = UNSET
    alerts: AlertConditions | UnsetType | None = UNSET  # null: no alert rule


class ConnectionBody(msgspec.Struct, forbid_unknown_fields=True):
    source: str
    destination: str
    transformation: str | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET


def _merged(current: S, body: msgspec.Struct) -> S:
    """`current` with the fields `body` gives."""
    given = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
    return msgspec.structs.replace(current, **given)


class TransformationBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str


def _shown(request: Request[Any, Any, Any], spec: WorkspaceSpec) -> WorkspaceSpec:
    """The workspace as this caller may see it: a viewer gets no secrets."""
    who = principal(request)
    if who is not None and who.may("editor"):
        return spec
    sources = [
        msgspec.structs.replace(s, write_key=f"{MASK}{(s.write_key or '')[-4:]}")
        for s in spec.sources
    ]
    destinations = []
    for d in spec.destinations:
        target = Target.of(d)
        config = target.plugin.for_viewers(d.config) if target.plugin else d.config
        masked = target.mask(msgspec.json.encode(config).decode())
        rule = d.alerts  # (a chat webhook's URL holds its token)
        if rule is not None:
            rule = msgspec.structs.replace(
                rule, webhook_url=rule.webhook_url and MASK, slack_url=rule.slack_url and MASK
            )
        destinations.append(
            msgspec.structs.replace(d, config=msgspec.json.decode(masked), alerts=rule)
        )
    return msgspec.structs.replace(spec, sources=sources, destinations=destinations)


async def _everything(request: Request[Any, Any, Any]) -> WorkspaceSpec:
    async with database(request) as conn:
        return await workspace.export(conn)


async def _export(request: Request[Any, Any, Any]) -> WorkspaceSpec:
    """The workspace as this caller may see it."""
    return _shown(request, await _everything(request))


async def _apply(request: Request[Any, Any, Any], spec: WorkspaceSpec, what: str) -> Applied:
    async with database(request) as conn:
        report = await changes(request, conn).apply(spec, action="api.apply", target=what)
    return Applied([list(change) for change in report.changes], report.new_write_keys)


@get("/workspace", summary="The whole workspace, as `sluice config export` writes it")
async def get_workspace(request: Request[Any, Any, Any]) -> WorkspaceSpec:
    return await _export(request)


@put("/workspace", summary="Create or update entries by name (others are left alone)")
async def put_workspace(request: Request[Any, Any, Any], data: JSONBody[WorkspaceSpec]) -> Applied:
    return await _apply(request, data, "workspace")


class Imported(Applied):
    skipped: list[str]  # what did not come along, and why


@post(
    "/workspace/import",
    summary="Import a RudderStack workspaceConfig.json: its sources (with their write keys), "
    "destinations and connections",
    status_code=200,
)
async def import_workspace(
    request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]
) -> Imported:
    found = rudderstack.read(data)
    applied = await _apply(request, found.spec, "RudderStack workspaceConfig")
    return Imported(applied.changes, applied.new_write_keys, found.skipped)


@get("/sources", summary="Every source")
async def list_sources(request: Request[Any, Any, Any]) -> list[SourceSpec]:
    return (await _export(request)).sources


@get("/sources/{name:str}", summary="One source")
async def get_source(request: Request[Any, Any, Any], name: FromPath[str]) -> SourceSpec:
    return _one((await _export(request)).sources, name, "source")


@put("/sources/{name:str}", summary="Create or update a source (no write_key: one is made)")
async def put_source(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[SourceBody]
) -> Applied:
    current = _find((await _everything(request)).sources, name) or SourceSpec(name=name)
    spec = _merged(current, data)
    return await _apply(request, WorkspaceSpec(sources=[spec]), f"source {name}")


@get("/destinations", summary="Every destination")
async def list_destinations(request: Request[Any, Any, Any]) -> list[DestinationSpec]:
    return (await _export(request)).destinations


@get("/destinations/{name:str}", summary="One destination")
async def get_destination(request: Request[Any, Any, Any], name: FromPath[str]) -> DestinationSpec:
    return _one((await _export(request)).destinations, name, "destination")


@put("/destinations/{name:str}", summary="Create or update a destination")
async def put_destination(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[DestinationBody]
) -> Applied:
    current = _find((await _everything(request)).destinations, name)
    if current is None:
        if isinstance(data.type, UnsetType):
            raise ConfigError(f"destination {name}", "a new destination needs its type")
        current = DestinationSpec(name=name, type=data.type)
    spec = _merged(current, data)
    return await _apply(request, WorkspaceSpec(destinations=[spec]), f"destination {name}")


@get("/transformations", summary="Every transformation, with its newest code")
async def list_transformations(request: Request[Any, Any, Any]) -> list[TransformationSpec]:
    return (await _export(request)).transformations


@put("/transformations/{name:str}", summary="Create a transformation or save a new version")
async def put_transformation(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[TransformationBody]
) -> Applied:
    spec = TransformationSpec(name=name, code=data.code)
    return await _apply(request, WorkspaceSpec(transformations=[spec]), f"transformation {name}")


@get("/connections", summary="Every connection")
async def list_connections(request: Request[Any, Any, Any]) -> list[ConnectionSpec]:
    return (await _export(request)).connections


@put("/connections", summary="Create or update the connection of a source to a destination")
async def put_connection(
    request: Request[Any, Any, Any], data: JSONBody[ConnectionBody]
) -> Applied:
    current = next(
        (c for c in (await _everything(request)).connections
         if (c.source, c.destination) == (data.source, data.destination)),
        ConnectionSpec(source=data.source, destination=data.destination),
    )  # fmt: skip
    label = f"connection {data.source} → {data.destination}"
    return await _apply(request, WorkspaceSpec(connections=[_merged(current, data)]), label)


async def _remove(request: Request[Any, Any, Any], kind: Deletable, name: str) -> None:
    async with database(request) as conn:
        await changes(request, conn).remove(kind, name)


@delete("/sources/{name:str}", summary="Delete a source (and its connections)")
async def delete_source(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await _remove(request, "source", name)


@delete(
    "/destinations/{name:str}",
    summary="Delete a destination (and its connections); its waiting events are discarded",
)
async def delete_destination(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await _remove(request, "destination", name)


@delete("/transformations/{name:str}", summary="Delete a transformation no connection uses")
async def delete_transformation(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await _remove(request, "transformation", name)


@delete("/connections", summary="Delete the connection of a source to a destination")
async def delete_connection(
    request: Request[Any, Any, Any], source: FromQuery[str], destination: FromQuery[str]
) -> None:
    async with database(request) as conn:
        await changes(request, conn).remove_connection(source, destination)


@get("/settings/smtp", summary="The SMTP server alert emails go through (null: none); its "
     "password masked", opt={"role": "admin"}, tags=["settings"])  # fmt: skip
async def get_smtp(request: Request[Any, Any, Any]) -> settings.Smtp | None:
    async with database(request) as conn:
        return await _smtp(conn)


@put("/settings/smtp", summary="Set the SMTP server alert emails go through (a password left "
     "out or `****` keeps the saved one)", opt={"role": "admin"}, tags=["settings"])  # fmt: skip
async def put_smtp(
    request: Request[Any, Any, Any], data: JSONBody[settings.Smtp]
) -> settings.Smtp | None:
    async with database(request) as conn:
        server = data.keeping_password(await settings.smtp(conn))
        await changes(request, conn).set_smtp(server)
        return await _smtp(conn)


async def _smtp(conn: Connection) -> settings.Smtp | None:
    """The SMTP server as the API shows it: the password masked."""
    found = await settings.smtp(conn)
    return found and msgspec.structs.replace(found, password=found.password and MASK)


@delete("/settings/smtp", summary="No SMTP server: alerts are not mailed", opt={"role": "admin"},
        tags=["settings"])  # fmt: skip
async def delete_smtp(request: Request[Any, Any, Any]) -> None:
    async with database(request) as conn:
        await changes(request, conn).set_smtp(None)


def _find(entries: list[Named], name: str) -> Named | None:
    return next((e for e in entries if e.name == name), None)


def _one(entries: list[Named], name: str, kind: str) -> Named:
    found = _find(entries, name)
    if found is None:
        raise NotFoundException(f"there is no {kind} named {name!r}")
    return found


router = Router(
    path="/api/v1",
    route_handlers=[
        get_workspace, put_workspace, import_workspace, list_sources, get_source, put_source,
        delete_source, list_destinations, get_destination, put_destination, delete_destination,
        list_transformations, put_transformation, delete_transformation, list_connections,
        put_connection, delete_connection, get_smtp, put_smtp, delete_smtp,
    ],
    tags=["workspace"],
)  # fmt: skip
