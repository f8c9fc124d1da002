"""Pacing under CPU starvation: a stage process that waits for a CPU while it is behind says so
in `pipeline_pressure` (from the kernel's run delay, measured for real on a CPU made scarce),
and a gateway on the same host pauses its answers, after the commit, while it is said."""

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from engine.db import connection_pool
from engine.gateway.pacing import FIRST, TARGET, Pacing
from engine.pressure import EVERY, Publisher, RunDelay, on_this_host
from tests.conftest import WRITE_KEY, ingested
from tests.delivery import wait_until
from tests.servers import start_gateway


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def one_cpu_shared_with(spinners: int) -> Iterator[None]:
    """This process kept to one CPU, with `spinners` processes busy on it too."""
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    procs = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
             for _ in range(spinners)]  # fmt: skip
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            assert proc.pid is not None
            os.sched_setaffinity(proc.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        yield
    finally:
        os.sched_setaffinity(0, before)
        for proc in procs:
            proc.kill()
            proc.join()


def said(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT host, pid, stage, level FROM pipeline_pressure").fetchall()


async def busy(seconds: float) -> None:
    """Work on the event loop, yielding to it every millisecond."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        mark = time.monotonic() + 0.001
        while time.monotonic() < mark:
            pass
        await asyncio.sleep(0)


async def test_a_stage_starved_of_cpu_while_falling_behind_says_so_and_nothing_once_it_is_not(
    database_url: str,
) -> None:
    behind_since: datetime | None = datetime.now(UTC) - timedelta(seconds=5)  # (and growing)
    pool = connection_pool(database_url)
    await pool.open()
    publisher = Publisher(pool, "deliver", lambda: behind_since, waits_for_vendors=True)
    task = asyncio.create_task(publisher.run())
    key = (socket.gethostname(), os.getpid(), "deliver")
    try:
        # Three busy on one CPU: each waits for it about two thirds of the time.
        with one_cpu_shared_with(spinners=2):
            deadline = time.monotonic() + 30
            while not any(row[:3] == key and row[3] >= 0.5 for row in said(database_url)):
                assert time.monotonic() < deadline, said(database_url)
                await busy(0.2)
        behind_since = None  # caught up: said as 0, however busy
        with one_cpu_shared_with(spinners=2):
            deadline = time.monotonic() + 30
            while said(database_url) != [(*key, 0.0)]:
                assert time.monotonic() < deadline, said(database_url)
                await busy(0.2)
        await publisher.clear()
        task.cancel()
        assert said(database_url) == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


def test_only_a_lag_over_a_second_that_grows_counts() -> None:
    now = datetime.now(UTC)
    since: datetime | None = None
    publisher = Publisher(None, "deliver", lambda: since, waits_for_vendors=True)  # type: ignore[arg-type]

    def looks(lags: list[float], waited: float = 0.6) -> list[float]:
        nonlocal since, now
        said = []
        for lag in lags:
            now += timedelta(seconds=EVERY)
            since = now - timedelta(seconds=lag)
            said.append(publisher.level(waited, now))
        return said

    assert looks([5, 5, 5, 5, 5, 5]) == [0] * 6  # far behind, not falling further: not paced
    assert looks([5.1, 5.2, 5.3]) == [0, 0.6, 0.6]  # (0.2 s more than two seconds before)
    assert looks([5.4, 5.5], waited=0.04) == [0, 0]  # (waiting for a CPU that little: noise)
    assert looks([0.5, 0.6, 0.7, 0.8, 0.9]) == [0] * 5  # growing, but under a second
    since = None
    now += timedelta(seconds=EVERY)
    assert publisher.level(0.9, now) == 0  # caught up
    # The processing stage, which has no vendor to wait for, says 1 while it falls behind.
    publisher = Publisher(None, "process", lambda: since, waits_for_vendors=False)  # type: ignore[arg-type]
    assert looks([5.0, 5.1, 5.2, 5.3, 5.4], waited=0.0) == [0, 0, 0, 0, 1.0]


def test_run_delay_is_nothing_where_the_kernel_does_not_say(tmp_path: Any) -> None:
    delay = RunDelay(tmp_path / "no-schedstat")
    assert delay.share() == 0.0
    (tmp_path / "garbled").write_text("nonsense")
    assert RunDelay(tmp_path / "garbled").share() == 0.0


def test_the_pause_grows_while_the_pipeline_is_starved_up_to_its_bound_and_then_goes() -> None:
    seen: list[float] = []
    pacing = Pacing(pool=None, most=0.1, observe=seen.append)  # type: ignore[arg-type]
    pacing.adjust(TARGET)  # (at the target: not paced)
    assert pacing.pause == 0
    pacing.adjust(0.5)
    assert pacing.pause == FIRST
    for _ in range(20):
        pacing.adjust(0.5)
    assert pacing.pause == 0.1  # the bound
    pacing.adjust(TARGET / 2)  # starved a little: the pause stays
    assert pacing.pause == 0.1
    steps = 0
    while pacing.pause:
        pacing.adjust(0.0)
        steps += 1
    assert 5 < steps < 30 and seen[-1] == 0.0
    assert all(later <= earlier for earlier, later in itertools.pairwise(seen[21:]))


def say(database_url: str, level: float) -> None:
    """What a stage process of this host would say (again and again, as one does)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO pipeline_pressure (host, pid, stage, level) VALUES (%s, 1, 'process', %s)"
            " ON CONFLICT (host, pid, stage) DO UPDATE SET level = EXCLUDED.level, at = now()",
            (socket.gethostname(), level),
        )


def test_a_gateway_paces_its_answers_while_its_host_is_starved_and_keeps_every_event(
    workspace_config: str, tmp_path: Path
) -> None:
    gateway = start_gateway(workspace_config, tmp_path, {"gateway_max_pacing_ms": "600"})
    try:

        def paced_most() -> bool:
            say(workspace_config, 0.6)
            return gateway.metric("sluice_gateway_pacing_seconds") == 0.6

        wait_until(paced_most)
        batch = [{"type": "track", "event": "E", "userId": "u", "messageId": f"p-{n}"}
                 for n in range(5)]  # fmt: skip
        answered: list[httpx.Response] = []
        started = time.monotonic()
        sending = threading.Thread(target=lambda: answered.append(httpx.post(
            f"{gateway.url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))))  # fmt: skip
        sending.start()
        # Committed first; answered once the pause is over.
        with psycopg.connect(workspace_config, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM ingested").fetchone() != (5,):
                assert sending.is_alive(), "answered before its events could be seen"
                time.sleep(0.01)
            assert sending.is_alive(), "answered before its events could be seen"
        sending.join()
        assert time.monotonic() - started >= 0.6
        assert answered[0].status_code == 200, answered[0].text
        assert {e["message_id"] for e in ingested(workspace_config)} == {f"p-{n}" for n in range(5)}

        def unpaced() -> bool:
            say(workspace_config, 0.0)
            return gateway.metric("sluice_gateway_pacing_seconds") == 0

        wait_until(unpaced)
    finally:
        gateway.stop()


async def test_a_gateway_hears_only_its_own_host_and_only_what_is_fresh(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "INSERT INTO pipeline_pressure (host, pid, stage, level, at) VALUES"
            " (%(here)s, 1, 'process', 0.9, now() - interval '1 minute'),"
            " ('elsewhere', 2, 'deliver', 0.8, now())", {"here": socket.gethostname()},
        )  # fmt: skip
        assert await on_this_host(conn) == 0.0
        await conn.execute(
            "INSERT INTO pipeline_pressure (host, pid, stage, level) VALUES (%s, 3, 'deliver',"
            " 0.25), (%s, 4, 'process', 0.5)", (socket.gethostname(), socket.gethostname()),
        )  # fmt: skip
        assert await on_this_host(conn) == 0.5


def test_a_gateway_process_killed_while_paced_leaves_no_pause_behind_in_the_metrics(
    workspace_config: str, tmp_path: Path
) -> None:
    def children() -> list[int]:
        pid = gateway.proc.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    gateway = start_gateway(workspace_config, tmp_path, {"gateway_workers": "2"})
    try:
        wait_until(lambda: len(children()) == 2)
        first = children()

        def paced() -> bool:
            say(workspace_config, 0.6)
            return gateway.metric("sluice_gateway_pacing_seconds") > 0

        wait_until(paced)
        os.kill(first[0], signal.SIGKILL)  # paced as it dies: its last pause is on file
        wait_until(lambda: len(children()) == 2 and first[0] not in children())

        def unpaced() -> bool:  # (the one killed no longer counts)
            say(workspace_config, 0.0)
            return gateway.metric("sluice_gateway_pacing_seconds") == 0

        wait_until(unpaced)
    finally:
        gateway.stop()
