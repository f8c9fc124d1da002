"""The Stats page: events received per source and delivered / failed per destination over the
last hour (per minute), day (per 10 minutes) or week (per hour), drawn as SVG charts from the
worker's per-minute counters; the top event names; how long deliveries took (median, 95th
percentile); what waits for delivery right now, per destination."""

from datetime import timedelta
from typing import Any

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from engine.control import graph, stats
from engine.pipeline.delivery import backlog
from engine.store.counters import NO_DESTINATION
from engine.warehouses import uploads
from ui import charts
from ui.charts import Layer
from ui.requests import database, signed_in

WINDOWS = {
    "hour": (timedelta(hours=1), timedelta(minutes=1)),
    "day": (timedelta(days=1), timedelta(minutes=10)),
    "week": (timedelta(days=7), timedelta(hours=1)),
}


@get("/stats")
async def stats_page(request: Request[Any, Any, Any], window: FromQuery[str] = "day") -> Template:
    chosen = window if window in WINDOWS else "day"
    span, step = WINDOWS[chosen]
    async with database(request) as conn:
        counts = await stats.series(conn, span, step)
        latency = await stats.percentiles(conn, span)
        names = await stats.top_names(conn, span)
        waiting = await backlog.current(conn)
        staged = await uploads.staged_by_destination(conn)
        shape = await graph.load(conn)
    received = charts.stacked(counts.buckets, step, [
        Layer(s.name, f"layer-{i % 8}", counts.of("received", source=s.id))
        for i, s in enumerate(shape.sources)
    ])  # fmt: skip
    destinations = [
        (d, charts.stacked(counts.buckets, step, [
            Layer("delivered", "layer-ok", counts.of("delivered", destination=d.id)),
            Layer("failed", "layer-bad", counts.of("aborted", destination=d.id)),
        ]), {outcome: sum(counts.of(outcome, destination=d.id))
             for outcome in ("retried", "replayed", "discarded", "filtered", "dropped")})
        for d in shape.destinations
    ]  # fmt: skip
    queues = [(d, waiting.get(d.id)) for d in shape.destinations]
    bars = charts.lengths([b.waiting if b else 0 for _, b in queues])
    duplicates = sum(counts.of("duplicate", destination=NO_DESTINATION))
    rejected = sum(counts.of("rejected", destination=NO_DESTINATION))
    return Template(
        "stats.html",
        context={"user": signed_in(request), "window": chosen, "windows": list(WINDOWS),
                 "received": received, "destinations": destinations, "duplicates": duplicates,
                 "rejected": rejected,
                 "latency": latency, "names": names,
                 "backlog": list(zip(queues, bars, strict=True)), "staged": staged},
    )  # fmt: skip


handlers = [stats_page]
