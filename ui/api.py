"""The config API, JSON under /api/v1, for scripts and CI: the workspace as a whole (the same
document `sluice config apply/export` reads and writes) and its sources, destinations,
transformations and connections one by one. Bearer tokens (made by admins on the Users page)
authenticate; a token's role limits it as a person's does: viewers read (destination secrets
masked, write keys shortened), editors change. Every change is applied through the workspace
store's `apply` and recorded in the audit log under the token's name.
"""

from typing import Any, TypeVar

import msgspec
from litestar import Request, Router, get, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from engine import audit, workspace
from engine.destinations.secrets import MASK
from engine.pipeline.topology import target
from engine.workspace import (
    ConnectionSpec,
    DestinationSpec,
    SourceSpec,
    TransformationSpec,
    WorkspaceSpec,
)
from ui.requests import pool_of, principal


class Changes(msgspec.Struct):
    """What an apply did, entry by entry, and the write keys of sources it created."""

    changes: list[tuple[str, str, workspace.Action]]  # (kind, name, what happened)
    new_write_keys: dict[str, str]


class SourceBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    write_key: str | None = None
    enabled: bool = True
    rate_limit: int | None = None


class DestinationBody(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    config: dict[str, Any] = {}
    enabled: bool = True


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
        row = {"id": None, "name": d.name, "type": d.type, "config": d.config,
               "delivery": {}, "enabled": d.enabled}  # fmt: skip
        masked = target(row).mask(msgspec.json.encode(d.config).decode())
        destinations.append(msgspec.structs.replace(d, config=msgspec.json.decode(masked)))
    return msgspec.structs.replace(spec, sources=sources, destinations=destinations)


async def _export(request: Request[Any, Any, Any]) -> WorkspaceSpec:
    async with pool_of(request).connection() as conn:
        return _shown(request, await workspace.export(conn))


async def _apply(request: Request[Any, Any, Any], spec: WorkspaceSpec, what: str) -> Changes:
    who = principal(request)
    assert who is not None
    async with pool_of(request).connection() as conn:
        report = await workspace.apply(conn, spec)
        changed = [f"{kind} {name}: {action}" for kind, name, action in report.changes
                   if action != "unchanged"]  # fmt: skip
        if changed:
            await audit.record(conn, who.email, "api.apply", what, changes=changed)
    return Changes(report.changes, report.new_write_keys)


@get("/workspace", summary="The whole workspace, as `sluice config export` writes it")
async def get_workspace(request: Request[Any, Any, Any]) -> WorkspaceSpec:
    return await _export(request)


@put("/workspace", summary="Create or update entries by name (others are left alone)")
async def put_workspace(request: Request[Any, Any, Any], data: JSONBody[WorkspaceSpec]) -> Changes:
    return await _apply(request, data, "workspace")


@get("/sources", summary="Every source")
async def list_sources(request: Request[Any, Any, Any]) -> list[SourceSpec]:
    return (await _export(request)).sources


@get("/sources/{name:str}", summary="One source")
async def get_source(request: Request[Any, Any, Any], name: FromPath[str]) -> SourceSpec:
    return _one((await _export(request)).sources, name, "source")


@put("/sources/{name:str}", summary="Create or update a source (no write_key: one is made)")
async def put_source(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[SourceBody]
) -> Changes:
    spec = SourceSpec(name=name, **msgspec.structs.asdict(data))
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
) -> Changes:
    async with pool_of(request).connection() as conn:
        current = next((d for d in (await workspace.export(conn)).destinations
                        if d.name == name), None)  # fmt: skip
    delivery = current.delivery if current else DestinationSpec(name, data.type).delivery
    spec = DestinationSpec(name, data.type, data.config, data.enabled, delivery)
    return await _apply(request, WorkspaceSpec(destinations=[spec]), f"destination {name}")


@get("/transformations", summary="Every transformation, with its newest code")
async def list_transformations(request: Request[Any, Any, Any]) -> list[TransformationSpec]:
    return (await _export(request)).transformations


@put("/transformations/{name:str}", summary="Create a transformation or save a new version")
async def put_transformation(
    request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[TransformationBody]
) -> Changes:
    spec = TransformationSpec(name=name, code=data.code)
    return await _apply(request, WorkspaceSpec(transformations=[spec]), f"transformation {name}")


@get("/connections", summary="Every connection")
async def list_connections(request: Request[Any, Any, Any]) -> list[ConnectionSpec]:
    return (await _export(request)).connections


@put("/connections", summary="Create or update the connection of a source to a destination")
async def put_connection(
    request: Request[Any, Any, Any], data: JSONBody[ConnectionSpec]
) -> Changes:
    label = f"connection {data.source} → {data.destination}"
    return await _apply(request, WorkspaceSpec(connections=[data]), label)


Named = TypeVar("Named", SourceSpec, DestinationSpec)


def _one(entries: list[Named], name: str, kind: str) -> Named:
    found = next((e for e in entries if e.name == name), None)
    if found is None:
        raise NotFoundException(f"there is no {kind} named {name!r}")
    return found


router = Router(
    path="/api/v1",
    route_handlers=[
        get_workspace, put_workspace, list_sources, get_source, put_source,
        list_destinations, get_destination, put_destination, list_transformations,
        put_transformation, list_connections, put_connection,
    ],
    tags=["workspace"],
)  # fmt: skip
