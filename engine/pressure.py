"""The pipeline's pressure: whether a stage process of the worker falls further behind (the
delivery stage: for want of CPU), said by each, read by the gateways on its host.

On a host the gateway, the worker and PostgreSQL share, a gateway that takes in all it is sent
as fast as it can takes the CPU (and PostgreSQL's time) the pipeline needs to deliver it: the
backlog grows, and delivery falls as intake rises. So every half second each stage process
(processing, delivery) works out how far behind its stage is (`behind_since`: the processor's
last full batch, a router's oldest job never tried, while more waits than they have read) and
measures how long its event loop was ready to run but waited for a CPU — the kernel's run
delay, in /proc/thread-self/schedstat. While the lag is over a second and has grown over the
last two seconds (intake outruns it), it says so in `pipeline_pressure`, and 0 otherwise. The
gateways on the same host read the highest and pace their answers while it is high
(engine/gateway/pacing.py), which slows the clients that wait for an answer before they send
again.

A backlog that shrinks (a worker catching up after an outage) paces nothing. The processing
stage has no vendor to wait for: while it falls further behind, intake outruns it whatever
the cause (CPU, PostgreSQL busy with the gateways' commits), and it says 1. The delivery stage
says its run-delay share, so that a router held up by its vendor — retries, a 429, a rate
limit (not counted as behind), a slow answer (it waits on a socket, not for a CPU) — leaves
intake alone.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.db import Connection, Pool, borrowed
from engine.errors import DatabaseError
from engine.heartbeats import this_process
from engine.sql import Queries

log = logging.getLogger(__name__)
_Q = Queries.beside(__file__, "pressure.sql")
EVERY = 0.5  # seconds between two measurements of a stage process, and two reads of a gateway
FRESH = timedelta(seconds=4 * EVERY)  # a level older than this is no longer true
NOISE = 0.05  # a share below this is said as 0
LAG = 1.0  # seconds: a stage less behind than this is keeping up
GROWTH = 0.2  # seconds its lag must have grown by over the last `_WINDOW` looks
_WINDOW = 4  # (two seconds)
_SCHEDSTAT = Path("/proc/thread-self/schedstat")


class RunDelay:
    """The share of the wall-clock time the calling thread waited for a CPU, since the last
    call. Always 0 where the kernel does not say (no schedstat)."""

    def __init__(self, path: Path = _SCHEDSTAT) -> None:
        self._path = path
        self._last = self._read()

    def _read(self) -> tuple[float, int] | None:
        try:
            waited = int(self._path.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return None
        return time.monotonic(), waited

    def share(self) -> float:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return 0.0
        return min(1.0, max(0.0, (now[1] - last[1]) / 1e9 / (now[0] - last[0])))


class Publisher:
    """Says, every `EVERY` seconds, how starved of CPU this process's `stage` is while it falls
    further behind (0 otherwise). `behind_since`: when the oldest event the stage could work
    on now was received, while more waits than it has read; None while it keeps up.

    `waits_for_vendors`: whether the stage can fall behind for a vendor's sake (a slow answer
    is not told from a starved router but by the run delay). The processing stage cannot:
    whatever holds it up — CPU, PostgreSQL busy with the gateways' commits, transformations —
    intake outruns it, so while it falls further behind it says 1, starved or not."""

    def __init__(
        self, pool: Pool, stage: str, behind_since: Callable[[], datetime | None],
        *, waits_for_vendors: bool,
    ) -> None:  # fmt: skip
        self._pool = pool
        self._key = {**this_process(), "stage": stage}
        self._behind_since = behind_since
        self._waits_for_vendors = waits_for_vendors
        self._lags: deque[float] = deque(maxlen=_WINDOW + 1)
        self._said = 0.0

    def level(self, waited: float, now: datetime) -> float:
        """What to say after this look, while the stage's lag is over `LAG` and has grown by
        `GROWTH` since `_WINDOW` looks ago: the share `waited` if it is more than noise (1 for
        a stage that does not wait for vendors); else 0."""
        since = self._behind_since()
        lag = 0.0 if since is None else (now - since).total_seconds()
        self._lags.append(lag)
        growing = len(self._lags) > _WINDOW and lag >= LAG and lag - self._lags[0] >= GROWTH
        if not growing:
            return 0.0
        if not self._waits_for_vendors:
            return 1.0
        return round(waited, 2) if waited >= NOISE else 0.0

    async def run(self) -> None:
        delay = RunDelay()
        with contextlib.suppress(DatabaseError):
            async with borrowed(self._pool) as conn:
                await conn.execute(_Q["forget"])
        while True:
            await asyncio.sleep(EVERY)
            level = self.level(delay.share(), datetime.now(UTC))
            if level == 0 and self._said == 0:
                continue
            try:
                async with borrowed(self._pool, timeout=EVERY) as conn:
                    await conn.execute(_Q["say"], {**self._key, "level": level})
                self._said = level
            except DatabaseError as exc:
                log.debug("pipeline pressure not said: %s", exc)

    async def clear(self) -> None:
        """Say nothing any more (on stop)."""
        with contextlib.suppress(DatabaseError):
            async with borrowed(self._pool) as conn:
                await conn.execute(_Q["gone"], self._key)


async def on_this_host(conn: Connection) -> float:
    """The highest level the stage processes of this host said lately."""
    cur = await conn.execute(_Q["on_host"], {"host": this_process()["host"], "fresh": FRESH})
    row = await cur.fetchone()
    return float(row[0]) if row else 0.0
