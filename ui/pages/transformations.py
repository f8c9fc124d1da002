"""Transformations: the list, and a transformation's page — a code editor, a test against a
sample event or a source's newest real one (output, what the code logged, the error with its
line), its versions with what each changed, and the connections that run it. Saving goes
through `engine.control.changes`, like `sluice config apply`, which refuses code that does
not compile."""

import difflib
from typing import Any
from uuid import UUID

import msgspec
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine import codec
from engine.control import events, graph, versions, workspace
from engine.errors import ConfigError
from engine.specs import TransformationSpec
from engine.store.ingest_log import Filters
from engine.transformations.trial import trial
from ui.pages.destinations import sample_event
from ui.requests import changes, database, signed_in

STARTER = """export function transformEvent(event, metadata) {
  // Change the event and return it; return null to drop it.
  return event;
}
"""


class Named(msgspec.Struct):
    name: str = ""


class Code(msgspec.Struct):
    code: str = ""


class Trial(msgspec.Struct):
    code: str = ""
    sample: str = "sample"  # or a source's id: its newest event


@get("/transformations")
async def transformations_page(request: Request[Any, Any, Any]) -> Template:
    async with database(request) as conn:
        listed = await versions.overview(conn)
    return Template("transformations.html", context={"user": signed_in(request), "listed": listed})


@post("/transformations", status_code=303)
async def create_transformation(
    request: Request[Any, Any, Any], data: URLEncodedBody[Named]
) -> Response[Any]:
    async with database(request) as conn:
        try:
            made = await changes(request, conn).create_transformation(data.name.strip(), STARTER)
        except ConfigError as exc:
            listed = await versions.overview(conn)
            return Template("transformations.html", status_code=400, context={
                "user": signed_in(request), "listed": listed, "error": exc.message,
            })  # fmt: skip
    return Redirect(f"/transformations/{made}", status_code=303)


async def _page(
    request: Request[Any, Any, Any], transformation_id: UUID, status: int = 200, **more: Any
) -> Template:
    async with database(request) as conn:
        spec: TransformationSpec | None = await workspace.entry(
            conn, "transformation", transformation_id
        )
        if spec is None:
            raise NotFoundException("there is no such transformation (any more)")
        history = await versions.history(conn, transformation_id)
        using = await versions.users(conn, transformation_id)
        sources = (await graph.load(conn)).sources
    context = {"user": signed_in(request), "id": transformation_id, "spec": spec,
               "code": spec.code, "history": history, "using": using, "sources": sources,
               "error": None, "diff": None, **more}  # fmt: skip
    return Template("transformation.html", context=context, status_code=status)


@get("/transformations/{transformation_id:uuid}")
async def transformation_page(
    request: Request[Any, Any, Any],
    transformation_id: FromPath[UUID],
    version: FromQuery[int | None] = None,
) -> Template:
    """The editor; with `version`, also what that version changed from the one before."""
    page = await _page(request, transformation_id)
    if version is not None:
        history: list[versions.Version] = page.context["history"]
        at = next((i for i, v in enumerate(history) if v.id == version), None)
        if at is None:
            raise NotFoundException("there is no such version (only the last 50 are kept here)")
        before = history[at + 1].code if at + 1 < len(history) else ""
        page.context["diff"] = (history[at], _diff(before, history[at].code))
    return page


def _diff(before: str, after: str) -> list[tuple[str, str]]:
    """The lines of a unified diff, each with its kind: added, removed, context or hunk."""
    kinds = {"+": "added", "-": "removed", "@": "hunk"}
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2)
    return [(kinds.get(line[:1], "context"), line) for line in list(lines)[2:]]


@post("/transformations/{transformation_id:uuid}/code", status_code=303)
async def save_code(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID], data: URLEncodedBody[Code]
) -> Response[Any]:
    """Saving changed code makes a new version, which every connection using it runs next."""
    async with database(request) as conn:
        try:
            action = await changes(request, conn).save_code(transformation_id, data.code)
        except ConfigError as exc:
            return await _page(request, transformation_id, 400, code=data.code,
                               error=exc.message)  # fmt: skip
    return Redirect(f"/transformations/{transformation_id}?saved={action}", status_code=303)


@post("/transformations/{transformation_id:uuid}/test", status_code=200)
async def test_code(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID], data: URLEncodedBody[Trial]
) -> Template:
    """Run the code as it is in the editor (saved or not) on one event, and show what came
    out. Nothing is sent anywhere."""
    event, note = sample_event(), "the sample event"
    source = _source_id(data.sample)
    if source is not None:
        async with database(request) as conn:
            newest = await events.recent(conn, Filters(source=source), limit=1)
        if not newest.events:
            note = "the sample event (that source has sent nothing yet)"
        else:
            event, note = codec.decode(newest.events[0].payload), "the source's newest event"
    result = await trial(data.code, [event])
    return HTMXBlockTemplate(
        template_name="transformation.html", block_name="result",
        context={"result": result, "event": event, "note": note},
    )  # fmt: skip


def _source_id(choice: str) -> UUID | None:
    """The source whose newest event to test on; None for the sample event."""
    try:
        return UUID(choice)
    except ValueError:
        return None


@post("/transformations/{transformation_id:uuid}/delete", status_code=303)
async def delete_transformation(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID]
) -> Response[Any]:
    """Delete it — refused while connections run it (the page says which)."""
    async with database(request) as conn:
        try:
            await changes(request, conn).delete("transformation", transformation_id)
        except ConfigError as exc:
            return await _page(request, transformation_id, 400, error=exc.message)
    return Redirect("/transformations", status_code=303)


handlers = [
    transformations_page, create_transformation, transformation_page, save_code, test_code,
    delete_transformation,
]  # fmt: skip
