"""`sluice failed list | replay | discard`: the failed-events services, for a terminal."""

import argparse

from appliance import runtime
from appliance.settings import Settings
from engine.control import failures
from engine.control.changes import CLI, Changes
from engine.db import connection

_ERROR_WIDTH = 60


async def failed_command(args: argparse.Namespace, url: str, settings: Settings) -> None:
    selection = failures.Selection(
        args.destination, args.since, tuple(args.job) if args.job else None
    )
    # (autocommit: each batch commits on its own, no long transaction holding back delivery)
    async with connection(url, autocommit=True) as conn:
        if args.failed_command == "discard":
            print(f"discarded {await Changes(conn, CLI).discard(selection)} failed job(s)")
            return
        if args.failed_command == "replay":
            async with runtime.javascript(url, settings) as javascript:
                report = await Changes(conn, CLI).replay(javascript, selection)
            print(f"replayed {report.replayed} failed job(s) as {report.jobs} new job(s)")
            if report.missing:
                print(f"{report.missing} failed job(s) could not be replayed: their event is "
                      "past the retention window")  # fmt: skip
            if report.missing_events:
                print(f"{report.missing_events} event(s) of replayed files could not be sent "
                      "again: they are past the retention window")  # fmt: skip
            return
        jobs = await failures.failed(conn, selection, limit=args.limit)
    if args.json:
        for job in jobs:
            print(job.as_json())
        return
    if not jobs:
        print("no failed jobs")
        return
    print(f"{'JOB':>10}  {'FAILED AT (UTC)':<19}  {'DESTINATION':<20}  {'TRIES':>5}  "
          f"{'EVENT':<24}  ERROR")  # fmt: skip
    for job in jobs:
        event = f"{job.events} events" if job.events > 1 else job.event_name or job.event_type
        error = (job.error or "").replace("\n", " ")
        if len(error) > _ERROR_WIDTH:
            error = error[: _ERROR_WIDTH - 1] + "…"
        print(f"{job.job_id:>10}  {job.failed_at:%Y-%m-%d %H:%M:%S}  {job.destination[:20]:<20}  "
              f"{job.attempts:>5}  {event[:24]!s:<24}  {error}")  # fmt: skip
