"""Transformations: the list, and a transformation's page — a code editor (CodeMirror, from
`ui/static/editor.js`, over a plain textarea), a test on an event given as JSON (the sample
event, a source's newest, or one of the newest received; the output, what the code logged, the
error with its line), its versions with who saved them and what each changed (an old one can be
restored: saved again as the newest), and the connections that run it. Saving goes through
`engine.control.changes`, like `sluice config apply`, which refuses code that does not compile.
Viewers may test (it changes and sends nothing) but not save, restore or delete."""

import asyncio
import difflib
import json
import re
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine import codec
from engine.control import events, graph, versions, workspace
from engine.errors import ConfigError
from engine.position import Position
from engine.specs import TransformationSpec
from engine.transformations.trial import trial
from ui import inputs
from ui.pages.destinations import sample_event
from ui.requests import changes, database, signed_in

TRIALS_AT_ONCE = 2  # test runs of transformations at once, per web process
T = TypeVar("T")
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
    payload: str = ""  # the event to test on, as JSON


RECENT = 10  # the newest events offered to test on
# Where an error points in the code: `line 2: SyntaxError…` (compiling), `… (line 3:14)` (running).
_LINE = re.compile(r"\bline (\d+)(?::(\d+))?")


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
        recent = (await events.recent(conn, limit=RECENT)).events
    context = {"user": signed_in(request), "id": transformation_id, "spec": spec,
               "code": spec.code, "history": history, "using": using, "sources": sources,
               "recent": recent, "names": {s.id: s.name for s in sources},
               "payload": _json(sample_event()), "note": None, "error": None, "diff": None,
               "error_at": error_at, **more}  # fmt: skip
    return Template("transformation.html", context=context, status_code=status)


def _json(event: Any) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False)


def error_at(message: str | None) -> tuple[int, int | None] | None:
    """The line (and column) of the code an error names, for the editor to mark."""
    found = _LINE.search(message or "")
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)) if found.group(2) else None


@get("/transformations/{transformation_id:uuid}")
async def transformation_page(
    request: Request[Any, Any, Any],
    transformation_id: FromPath[UUID],
    version: FromQuery[int | None] = None,
    event: FromQuery[str | None] = None,
) -> Template:
    """The editor; with `version`, also what that version changed from the one before; with
    `event` (`<tx>:<id>:<received_at>`, linked from an event's page), that event to test on."""
    picked: dict[str, Any] = {}
    if event is not None:
        async with database(request) as conn:
            found = await events.stored(conn, *_position(event))
        picked = {"payload": _json(codec.decode(found.payload))} if found else {
            "note": "That event is gone (past the retention window?): here is the sample event."
        }  # fmt: skip
    page = await _page(request, transformation_id, **picked)
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


@post("/transformations/{transformation_id:uuid}/restore", status_code=303)
async def restore_version(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID], version: FromQuery[int]
) -> Response[Any]:
    """Save an earlier version's code again, as a new version: history is never rewritten."""
    async with database(request) as conn:
        code = await versions.code(conn, transformation_id, version)
        if code is None:
            raise NotFoundException("there is no such version of this transformation")
        action = await changes(request, conn).save_code(transformation_id, code)
    after = f"restored={version}" if action == "updated" else f"saved={action}"
    return Redirect(f"/transformations/{transformation_id}?{after}", status_code=303)


@post("/transformations/{transformation_id:uuid}/test", status_code=200, opt={"role": "viewer"})
async def test_code(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID], data: URLEncodedBody[Trial]
) -> Template:
    """Run the code as it is in the editor (saved or not) on the event given, and show what
    came out. Nothing is changed or sent, so viewers may too."""
    context: dict[str, Any] = {"payload_error": None, "result": None, "error_at": error_at}
    try:
        event = json.loads(data.payload)
    except json.JSONDecodeError as exc:
        at = (exc.lineno, exc.colno)
        said = f"The test event is not valid JSON: {exc.msg} (line {at[0]}, column {at[1]})"
        context["payload_error"] = (said, at)
    except (ValueError, RecursionError):  # a number of thousands of digits, nesting too deep
        context["payload_error"] = ("The test event is too large or too deeply nested", None)
    else:
        if isinstance(event, dict):
            context["result"] = await _bounded(request, trial(data.code, [event]))
        else:
            context["payload_error"] = ("The test event must be one JSON object, in {…}", (1, None))
    return HTMXBlockTemplate(template_name="transformation.html", block_name="result",
                             context=context)  # fmt: skip


async def _bounded(request: Request[Any, Any, Any], work: Coroutine[Any, Any, T]) -> T:
    """A test run, if fewer than TRIALS_AT_ONCE run in this process: each starts a sandbox
    process of its own (up to its heap and CPU limits), and anyone signed in may ask."""
    trials: asyncio.Semaphore = request.app.state.trials
    if trials.locked():
        work.close()
        raise HTTPException(
            status_code=429, headers={"Retry-After": "2"},
            detail=f"{TRIALS_AT_ONCE} tests are running here already: try again in a moment",
        )  # fmt: skip
    async with trials:
        return await work


@get("/transformations/{transformation_id:uuid}/payload")
async def payload(
    request: Request[Any, Any, Any], transformation_id: FromPath[UUID], pick: FromQuery[str]
) -> Template:
    """The test event editor holding the event picked: `sample`, `source:<id>` (that source's
    newest event) or `event:<tx>:<id>` (one of the newest listed)."""
    kind, _, key = pick.partition(":")
    event, note = None, None
    async with database(request) as conn:
        if kind == "source":
            newest = await events.recent(conn, events.Filters(source=_uuid(key)), limit=1)
            found = newest.events[0] if newest.events else None
            note = None if found else "That source has sent nothing yet: here is the sample event."
        elif kind == "event":
            found = await events.stored(conn, *_position(key))
            note = None if found else "That event is gone (past the retention window?)."
        else:
            found = None
        if found is not None:
            event = codec.decode(found.payload)
    return HTMXBlockTemplate(template_name="transformation.html", block_name="payload", context={
        "payload": _json(event if event is not None else sample_event()), "note": note,
    })  # fmt: skip


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFoundException("there is no such source") from None


def _position(text: str) -> tuple[Position, datetime | None]:
    """`<tx>:<id>:<received_at>`: where an event is, and when it came (which spares looking in
    every day's partition of the log)."""
    tx, _, rest = text.partition(":")
    row, _, received = rest.partition(":")
    found = inputs.position(tx, row)
    if found is None:
        raise NotFoundException("there is no such event")
    return found, inputs.moment(received)


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
    transformations_page, create_transformation, transformation_page, save_code, restore_version,
    test_code, payload, delete_transformation,
]  # fmt: skip
