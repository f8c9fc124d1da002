"""`sluice failed list | replay | discard`: the failed-events services, for a terminal."""

import argparse
import json
from typing import Any

import psycopg

from engine.control import failures
from engine.db import connection, connection_pool
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore

_ERROR_WIDTH = 60


async def _replay(
    conn: psycopg.AsyncConnection[Any], url: str, selection: failures.Selection
) -> failures.ReplayReport:
    """Replays run transformations again: this process gets a runtime of its own."""
    pool = connection_pool(url, max_size=2)
    await pool.open()
    javascript = JavaScript(CodeStore(pool).code)
    try:
        return await failures.replay(conn, javascript, selection)
    finally:
        await javascript.close()
        await pool.close()


async def failed_command(args: argparse.Namespace, url: str) -> None:
    selection = failures.Selection(
        args.destination, args.since, tuple(args.job) if args.job else None
    )
    async with connection(url) as conn:
        # Each batch commits on its own: no long transaction holding back delivery.
        await conn.set_autocommit(True)
        if args.failed_command == "discard":
            print(f"discarded {await failures.discard(conn, selection)} failed job(s)")
            return
        if args.failed_command == "replay":
            report = await _replay(conn, url, selection)
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
            print(json.dumps(job.as_json(), ensure_ascii=False))
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
