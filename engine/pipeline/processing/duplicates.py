"""Duplicates: an event is one when an earlier event of its source and user partition carried the
same messageId within the window.

The earlier event is looked for among those the processor has read before (`ingest_log.seen`,
which keeps the batch's message ids in the transaction that advances its positions) and, in
hand, among the batch's own earlier events. Both depend on what has committed and on the batch
alone, so a batch read again after a crash is sifted the same way.
"""

import bisect
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from engine.db import Connection
from engine.store import ingest_log
from engine.store.ingest_log import Logged


async def sift(
    conn: Connection, rows: Sequence[Logged], window: timedelta
) -> tuple[list[Logged], list[Logged]]:
    """The rows (in commit order, each past its partition's position) split into firsts and
    duplicates; their message ids are kept, in the caller's transaction, for the batches to
    come. With no window (zero), every row is a first."""
    if not window:
        return list(rows), []
    earlier = await ingest_log.seen(conn, rows, window)
    firsts, duplicates = [], []
    times: defaultdict[tuple[int, UUID, str], list[datetime]] = defaultdict(list)
    for row in rows:
        received = times[row.partition, row.source_id, row.message_id]  # (sorted)
        if row.id in earlier or _near(received, row.received_at, window):
            duplicates.append(row)
        else:
            firsts.append(row)
        bisect.insort(received, row.received_at)
    return firsts, duplicates


def _near(received: list[datetime], at: datetime, window: timedelta) -> bool:
    """Is one of the (sorted) times within `window` of `at`? The nearest are either side."""
    i = bisect.bisect_left(received, at)
    return (i < len(received) and received[i] - at < window) or (
        i > 0 and at - received[i - 1] < window
    )
