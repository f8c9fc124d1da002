"""`sluice replay`: the raw archive's events through the pipeline again, with a progress bar."""

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from appliance.settings import Settings
from engine.control.archive_replay import ArchiveReplay, ReplayError
from engine.db import connection, connection_pool
from engine.transformations.runtime import JavaScript
from engine.transformations.store import CodeStore


async def replay_command(args: argparse.Namespace, url: str, settings: Settings) -> None:
    options = settings.archive()
    if options is None:
        raise ReplayError("no archive: SLUICE_ARCHIVE_BUCKET is not set")
    pool = connection_pool(url, max_size=2)  # transformations read their code through it
    await pool.open()
    javascript = JavaScript(CodeStore(pool).code)
    try:
        async with connection(url) as conn:
            await conn.set_autocommit(True)  # each batch commits on its own
            replay = ArchiveReplay(
                conn, javascript, options.bucket, source=args.source, since=args.since,
                until=args.until, destination=args.destination,
            )  # fmt: skip
            keys = await replay.keys()
            columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("files"), TimeRemainingColumn())  # fmt: skip
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task("replay", total=len(keys))
                for key in keys:
                    await replay.replay(key)
                    progress.advance(task)
    finally:
        await javascript.close()
        await pool.close()
    report = replay.report
    print(f"read {report.files} archive file(s): replayed {report.events} event(s) as "
          f"{report.jobs} job(s)")  # fmt: skip
