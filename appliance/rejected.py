"""`sluice rejected`: the messages the gateway refused (over the size limit), for a terminal."""

import argparse
import json

from engine.db import connection
from engine.store import rejections

_REASON_WIDTH = 60


async def rejected_command(args: argparse.Namespace, url: str) -> None:
    async with connection(url) as conn:
        refused = await rejections.newest(conn, args.source, args.limit)
    if args.json:
        for r in refused:
            print(json.dumps({"received_at": r.received_at.isoformat(), "source": r.source,
                              "reason": r.reason, "bytes": r.bytes, "head": r.head},
                             ensure_ascii=False))  # fmt: skip
        return
    if not refused:
        print("nothing rejected at the gateway")
        return
    print(f"{'RECEIVED (UTC)':<19}  {'SOURCE':<20}  {'BYTES':>9}  REASON")
    for r in refused:
        reason = r.reason if len(r.reason) <= _REASON_WIDTH else r.reason[: _REASON_WIDTH - 1] + "…"
        print(f"{r.received_at:%Y-%m-%d %H:%M:%S}  {r.source[:20]:<20}  {r.bytes:>9}  {reason}")
