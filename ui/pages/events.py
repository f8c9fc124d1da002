"""The Events page: the newest events as they arrive (the page polls for newer ones while it is
visible; a source's page shows the same list, of its events), filtered by source, call type,
name, user and a search; each row with its status at each destination, opening to its payload
and, per destination, what became of it — the request sent and the answer received. An event
also has a page of its own, to link to, from which an editor replays it where it failed."""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from engine.control import events, graph
from engine.control.failures import Selection
from engine.position import END, START, Position
from ui import inputs
from ui.requests import changes, database, signed_in
from ui.security import redirect

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
PAGE = 50
KEEP = 200  # rows a live list keeps (its data-keep)


@dataclass(frozen=True)
class Shown:
    """The filters as the page's form has them (empty: any)."""

    source: str = ""  # a source's id
    type: str = ""
    name: str = ""
    user: str = ""
    q: str = ""  # a search: `events.search`

    def filters(self) -> events.Filters:
        try:
            source = UUID(self.source) if self.source else None
        except ValueError:
            source = None
        found = events.search(self.q) if self.q else events.Filters()
        return replace(found, source=source, type=self.type or None, name=self.name or None,
                       user=self.user or None)  # fmt: skip

    def query(self, **more: Any) -> str:
        values = {"source": self.source, "type": self.type, "name": self.name,
                  "user": self.user, "q": self.q, **more}  # fmt: skip
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _shown(
    source: str | None, type: str | None, name: str | None, user: str | None, q: str | None
) -> Shown:
    kind = type if type in CALL_TYPES else ""
    return Shown(*((v or "").strip() for v in (source, kind, name, user, q)))


@get("/events")
async def events_page(
    request: Request[Any, Any, Any],
    source: FromQuery[str | None] = None,
    type: FromQuery[str | None] = None,
    name: FromQuery[str | None] = None,
    user: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    before_tx: FromQuery[str | None] = None,
    before_id: FromQuery[int] = 0,
) -> Template:
    """The page; its `stream` block alone (the list, live) for a page that shows it (a
    source's)."""
    shown = _shown(source, type, name, user, q)
    before = _point(before_tx, before_id, END)
    async with database(request) as conn:
        page = await events.recent(conn, shown.filters(), before=before, limit=PAGE)
        sources = (await graph.load(conn)).sources
        chips = await events.statuses(conn, page.events)
    newest = page.events[0].position if page.events else None
    context = {
        "user": signed_in(request), "shown": shown, "page": page, "chips": chips,
        "names": {s.id: s.name for s in sources}, "sources": sources, "call_types": CALL_TYPES,
        "live": before == END, "cursor": newest or await _start(request), "keep": KEEP,
        "unsettled": events.UNSETTLED,
    }  # fmt: skip
    if request.headers.get("hx-request"):
        return HTMXBlockTemplate(template_name="events.html", block_name="stream", context=context)
    return Template("events.html", context=context)


async def _start(request: Request[Any, Any, Any]) -> Position:
    """Where a live page with no event yet starts: nothing stored so far is new to it."""
    async with database(request) as conn:
        page = await events.recent(conn, limit=1)
    return page.events[0].position if page.events else START


def _point(tx: str | None, ingest_id: int, otherwise: Position) -> Position:
    """A place in the log from a page's query, `otherwise` when it is not one."""
    return inputs.position(tx, ingest_id) or otherwise


@get("/events/live")
async def live_events(
    request: Request[Any, Any, Any],
    after_tx: FromQuery[str | None] = None,
    after_id: FromQuery[int] = 0,
    source: FromQuery[str | None] = None,
    type: FromQuery[str | None] = None,
    name: FromQuery[str | None] = None,
    user: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    pending: FromQuery[str | None] = None,
) -> Template:
    """The rows of the events newer than the page's newest, for the page to put on top: the
    newest PAGE of them, and a note when more came meanwhile than that; and, to replace those
    the page has (`pending`: `tx:id,…`) whose statuses could have changed since, their lines
    again."""
    shown = _shown(source, type, name, user, q)
    after = _point(after_tx, after_id, END)
    async with database(request) as conn:
        page = await events.recent(conn, shown.filters(), after=after, limit=PAGE + 1)
        names = {s.id: s.name for s in (await graph.load(conn)).sources}
        skipped = len(page.events) > PAGE
        page = events.Page(page.events[:PAGE], None)
        updated = await events.listed(conn, _positions(pending))
        chips = await events.statuses(conn, page.events + updated)
    return Template(
        "event_rows.html",
        context={"page": page, "names": names, "skipped": skipped, "shown": shown,
                 "chips": chips, "updated": updated, "unsettled": events.UNSETTLED},
    )  # fmt: skip


def _positions(text: str | None) -> list[Position]:
    """Rows of a page, as it names them (`tx:id,…`): its first PAGE, newest first, so that a
    poll costs no more than a page however many rows wait (the worker stopped, say)."""
    found = (inputs.position(*item.split(":", 1)) for item in (text or "").split(",")[:PAGE]
             if ":" in item)  # fmt: skip
    return [at for at in found if at is not None]


@get("/events/{tx:str}/{ingest_id:int}")
async def event_page(
    request: Request[Any, Any, Any],
    tx: FromPath[str],
    ingest_id: FromPath[int],
    at: FromQuery[datetime | None] = None,
    own: FromQuery[bool] = False,
) -> Template:
    """One event and what became of it; its `trace` block alone for the list it opens in, or
    for its own page (`own`) refreshing it while a job waits for its answer."""
    async with database(request) as conn:
        found = await events.trace(conn, _place(tx, ingest_id), at)
        names = {s.id: s.name for s in (await graph.load(conn)).sources}
    if found is None:
        raise NotFoundException("there is no such event (any more: past the retention window?)")
    event, outcomes = found
    fragment = bool(request.headers.get("hx-request"))
    context = {"user": signed_in(request), "event": event, "outcomes": outcomes, "names": names,
               "listed": fragment and not own}  # fmt: skip
    if fragment:
        return HTMXBlockTemplate(template_name="event.html", block_name="trace", context=context)
    return Template("event.html", context=context)


@post("/events/{tx:str}/{ingest_id:int}/replay", status_code=303)
async def replay_event(
    request: Request[Any, Any, Any], tx: FromPath[str], ingest_id: FromPath[int]
) -> Response[Any]:
    """Send the event again where it failed: to one destination (`destination`, its id) or to
    every one (`all`). The Failed page's replay, of this event's failed jobs."""
    form = await request.form()
    at, place = inputs.moment(form.get("at")), _place(tx, ingest_id)
    async with database(request, autocommit=True) as conn:  # (a replay commits batch by batch)
        found = await events.trace(conn, place, at)
        if found is None:
            raise NotFoundException("there is no such event (any more: past the retention window?)")
        event, outcomes = found
        chosen = [o for o in outcomes if form.get("destination") in ("all", str(o.destination_id))]
        picked = tuple(job for o in chosen for job in o.replayable)
        replayed = 0
        if picked:
            only = chosen[0].destination if len(chosen) == 1 else None
            report = await changes(request, conn).replay(
                request.app.state.javascript, Selection(only, job_ids=picked),
                event=event.message_id,
            )  # fmt: skip
            replayed = report.replayed
    link = f"/events/{tx}/{ingest_id}?{urlencode({'at': event.received_at.isoformat()})}"
    return redirect(request, f"{link}&replayed={replayed}")


def _place(tx: str, ingest_id: int) -> Position:
    """An event's place in the log, from its address."""
    found = inputs.position(tx, ingest_id)
    if found is None:
        raise NotFoundException("there is no such event")
    return found


handlers = [events_page, live_events, event_page, replay_event]
