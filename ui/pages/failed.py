"""Failed events: per destination, the jobs it gave up on (aborted) and those still being tried,
grouped by destination and kind of failure (HTTP status and error) with a sample; a group's
jobs with their error, tries, last request and answer; replay one, a selection or everything
matching the filter (batch by batch, with progress, then what the replayed jobs came to), or
discard them. The same engine services as `sluice failed`."""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.exceptions import ValidationException
from litestar.params import FromQuery
from litestar.response import Template

from engine.control import failures, graph
from engine.control.failures import ReplayReport, Selection
from engine.db import one_snapshot
from engine.errors import DatabaseUnavailable
from ui import inputs
from ui.requests import changes, database, signed_in
from ui.security import redirect

PAGE = 100  # jobs of a group per page
GROUPS = 100  # kinds of failure shown, the most frequent
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "all": None}
View = Literal["aborted", "retrying"]
FOLLOWED = timedelta(minutes=10)  # how long the page asks what a replay's jobs came to


@dataclass(frozen=True)
class Filter:
    """What the page shows: a destination's (by name) or every one's, failed within a window;
    every kind of failure (grouped) or one (`group`, its jobs)."""

    destination: str = ""
    window: str = "all"
    group: str = ""

    @classmethod
    def of(cls, destination: str | None, window: str | None, group: str | None = None) -> "Filter":
        return cls(destination or "", window if window in WINDOWS else "all", group or "")

    def selection(self, until: datetime, job_ids: tuple[int, ...] | None = None) -> Selection:
        """The failed jobs shown: the window ends at `until` (the database's clock when the
        page was drawn), so every batch of a replay means the same jobs."""
        span = WINDOWS[self.window]
        return Selection(self.destination or None, until - span if span else None, job_ids,
                         self.group or None)  # fmt: skip

    def query(self, **more: Any) -> str:
        """The page's query string for this filter (and `more`)."""
        values = {"destination": self.destination, "window": self.window, "group": self.group,
                  **more}  # fmt: skip
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(frozen=True)
class Progress:
    """Where a replay stands, carried from batch to batch by the page (hidden fields)."""

    scope: str
    total: int
    until: datetime
    after_at: datetime
    after_id: int
    first_job: int  # the last job id handed out before it began: its jobs' ids are greater
    replayed: int = 0
    jobs: int = 0
    missing: int = 0
    missing_events: int = 0
    finished: bool = False

    def advanced(self, step: ReplayReport, cursor: failures.Cursor | None) -> "Progress":
        """After one more batch: its counts added; finished when nothing was left."""
        done = ReplayReport(self.replayed, self.jobs, self.missing, self.missing_events)
        done.add(step)
        after = cursor or (self.after_at, self.after_id)
        return Progress(self.scope, self.total, self.until, *after, self.first_job,
                        **asdict(done), finished=cursor is None)  # fmt: skip

    @classmethod
    def carried(cls, scope: str, form: FormMultiDict) -> "Progress":
        """The progress the page sent back with the request for the next batch."""
        try:
            return cls(
                scope, int(form["total"]), datetime.fromisoformat(form["until"]),
                datetime.fromisoformat(form["after_at"]), int(form["after_id"]),
                int(form["first_job"]), replayed=int(form["replayed"]), jobs=int(form["jobs"]),
                missing=int(form["missing"]), missing_events=int(form["missing_events"]),
            )  # fmt: skip
        except (KeyError, ValueError) as exc:
            raise ValidationException(
                f"the replay's progress came back damaged ({exc}): start the replay again"
            ) from exc


@get("/failed")
async def failed_page(
    request: Request[Any, Any, Any],
    destination: FromQuery[str | None] = None,
    window: FromQuery[str | None] = None,
    view: FromQuery[View] = "aborted",
    group: FromQuery[str | None] = None,
    since: FromQuery[datetime | None] = None,
    after_at: FromQuery[datetime | None] = None,
    after_id: FromQuery[int] = 0,
    first_job: FromQuery[int] = 0,
    last_job: FromQuery[int] = 0,
) -> Template:
    shown, retrying = Filter.of(destination, window, group), view == "retrying"
    after = (after_at, after_id) if after_at else failures.START
    async with database(request) as conn:
        await one_snapshot(conn)  # the total agrees with the list, attempts committing or not
        until = await failures.now(conn)
        selection = shown.selection(until)
        names = [d.name for d in (await graph.load(conn)).destinations]
        counts = await failures.per_destination(conn)
        total = await failures.count(conn, selection, until, retrying=retrying)
        kinds = await failures.groups(conn, selection, until, retrying=retrying, limit=GROUPS)
        jobs = await failures.failed(
            conn, selection, until=until, limit=PAGE, after=after, retrying=retrying
        ) if shown.group else []  # fmt: skip
    following = shown.query(view=view, after_at=jobs[-1].failed_at.isoformat(),
                            after_id=jobs[-1].job_id) if len(jobs) == PAGE else None  # fmt: skip
    return Template(
        "failed.html",
        context={
            "user": signed_in(request), "filter": shown, "view": view, "jobs": jobs,
            "total": total, "summary": [(n, *counts[n]) for n in names if n in counts],
            "destinations": names, "windows": list(WINDOWS), "following": following,
            "groups": kinds, "progress": None, "until": until, "since": since,
            "made": (first_job, last_job),
        },
    )  # fmt: skip


@get("/failed/outcomes")
async def replay_outcomes(
    request: Request[Any, Any, Any],
    since: FromQuery[datetime],
    first_job: FromQuery[int],
    last_job: FromQuery[int],
    destination: FromQuery[str | None] = None,
) -> HTMXBlockTemplate:
    """What the jobs a replay begun at `since` made (ids in (first_job, last_job]) came to: the
    page asks again while some are being sent, for `FOLLOWED` at most."""
    made = (first_job, last_job)
    async with database(request) as conn:
        found = await failures.outcomes(conn, made, since, destination or None)
        following = await failures.now(conn) - since < FOLLOWED
    return HTMXBlockTemplate(template_name="failed.html", block_name="outcomes",
                             context={"outcomes": found, "since": since, "made": made,
                                      "following": following,
                                      "followed_minutes": FOLLOWED // timedelta(minutes=1),
                                      "filter": Filter.of(destination, None)})  # fmt: skip


def _chosen(form: FormMultiDict) -> tuple[Filter, str, tuple[int, ...] | None]:
    """The filter, the scope (`selected` jobs or everything `matching`) and the jobs picked."""
    shown = Filter.of(form.get("destination"), form.get("window"), form.get("group"))
    scope = "selected" if form.get("scope") == "selected" else "matching"
    found = (inputs.whole_number(str(v)) for v in form.getall("job", []))
    picked = tuple(job for job in found if job is not None)
    return shown, scope, picked if scope == "selected" else None


@post("/failed/replay", status_code=200)
async def replay(request: Request[Any, Any, Any]) -> Response[Any]:
    """One batch of a replay per request: the page posts the next one as soon as it has shown
    this one's progress. A browser without htmx gets the whole replay in one request."""
    user = signed_in(request)
    form = await request.form()
    shown, scope, picked = _chosen(form)
    htmx = bool(request.headers.get("hx-request"))
    context = {"user": user, "filter": shown, "picked": picked or ()}
    try:
        async with database(request, autocommit=True) as conn:  # each batch: its transaction
            if form.get("after_at"):
                progress = Progress.carried(scope, form)
            else:
                until = _until(form) or await failures.now(conn)
                total = await changes(request, conn).replaying(
                    shown.selection(until, picked), until, window=shown.window
                )
                progress = Progress(scope, total, until, *failures.START,
                                    await failures.last_job(conn))  # fmt: skip
            selection = shown.selection(progress.until, picked)
            while not progress.finished:
                step, cursor = await failures.replay_step(
                    conn, request.app.state.javascript, selection, progress.until,
                    (progress.after_at, progress.after_id),
                )  # fmt: skip
                progress = progress.advanced(step, cursor)
                if htmx:
                    break
            made = (progress.first_job, await failures.last_job(conn))
    except (ValidationException, DatabaseUnavailable) as exc:
        if not htmx:
            raise
        # (htmx swaps only a 2xx answer: the page shows why its replay stopped)
        reason = exc.detail if isinstance(exc, ValidationException) else str(exc)
        return HTMXBlockTemplate(template_name="failed.html", block_name="progress",
                                 context=context | {"stopped": reason})  # fmt: skip
    if not htmx:
        query = shown.query(replayed=progress.replayed, since=progress.until.isoformat(),
                            first_job=made[0], last_job=made[1])  # fmt: skip
        return redirect(request, f"/failed?{query}")
    return HTMXBlockTemplate(template_name="failed.html", block_name="progress",
                             context=context | {"progress": progress, "made": made})  # fmt: skip


def _until(form: FormMultiDict) -> datetime | None:
    """The moment the page was drawn: what it showed had failed by then."""
    return inputs.moment(form.get("until"))


@post("/failed/discard", status_code=303)
async def discard(request: Request[Any, Any, Any]) -> Response[Any]:
    """Discard the selected jobs, or all the filter matched when the page was drawn."""
    form = await request.form()
    shown, _, picked = _chosen(form)
    async with database(request, autocommit=True) as conn:
        until = _until(form) or await failures.now(conn)
        discarded = await changes(request, conn).discard(
            shown.selection(until, picked), until, window=shown.window
        )
    return redirect(request, f"/failed?{shown.query(discarded=discarded)}")


handlers = [failed_page, replay_outcomes, replay, discard]
