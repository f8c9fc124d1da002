"""`sluice replay`: the raw archive's events through the pipeline again, with a progress bar."""

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from appliance import runtime
from appliance.settings import Settings
from engine.control.archive_replay import ArchiveReplay, ReplayError
from engine.control.changes import CLI, Changes
from engine.db import connection


async def replay_command(args: argparse.Namespace, url: str, settings: Settings) -> None:
    options = settings.archive()
    if options is None:
        raise ReplayError("no archive: SLUICE_ARCHIVE_BUCKET is not set")
    async with (
        runtime.javascript(url, settings) as javascript,
        connection(url, autocommit=True) as conn,
    ):
        # (autocommit: each batch commits on its own)
        replay = ArchiveReplay(
            conn, javascript, options.bucket, source=args.source, since=args.since,
            until=args.until, destination=args.destination,
        )  # fmt: skip
        keys = await replay.keys()
        await Changes(conn, CLI).replaying_archive(args.source, args.since, args.until,
                                                   args.destination)  # fmt: skip
        columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("files"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("replay", total=len(keys))
            for key in keys:
                await replay.replay(key)
                progress.advance(task)
    report = replay.report
    print(f"read {report.files} archive file(s): replayed {report.events} event(s) as "
          f"{report.jobs} job(s)")  # fmt: skip
