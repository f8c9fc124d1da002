"""Driving the pipeline in end-to-end tests: connect destinations, post events, read what was
delivered and what failed (through the CLI, as a user would)."""

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from tests.conftest import WRITE_KEY, apply_config
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink

FAST_RETRIES = "{min_backoff_seconds: 0.1, max_backoff_seconds: 0.5}"


def connect_destinations(
    database_url: str, *destinations: tuple[str, str, dict[str, Any]], delivery: str = FAST_RETRIES
) -> None:
    """Destinations given as (name, type, config), each connected to the website source."""
    apply_config(
        database_url,
        "destinations:\n"
        + "".join(
            f"  - {{name: {name}, type: {kind}, config: {json.dumps(config)}, "
            f"delivery: {delivery}}}\n"
            for name, kind, config in destinations
        )
        + "connections:\n"
        + "".join(f"  - {{source: website, destination: {name}}}\n" for name, _, _ in destinations),
    )


def connect(database_url: str, delivery: str = FAST_RETRIES, **sinks: str) -> None:
    """Webhook destinations named after the keywords, connected to the website source."""
    webhooks = [
        (name, "webhook", {"webhookUrl": f"{url}/in/{name}"}) for name, url in sinks.items()
    ]
    connect_destinations(database_url, *webhooks, delivery=delivery)


def sluice(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env={**os.environ, "SLUICE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def post(gateway: GatewayProcess, batch: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{gateway.url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
    assert answer.status_code == 200, answer.text


def attempts(database_url: str, delivered: int) -> Counter[str]:
    """Attempt rows by state, once `delivered` deliveries are recorded (they trail the sink)."""
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT state, count(*) FROM job_attempts GROUP BY 1")
            states: Counter[str] = Counter(dict(rows.fetchall()))
        if states["delivered"] >= delivered or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def failed_jobs(database_url: str) -> list[dict[str, Any]]:
    out = sluice(database_url, "failed", "list", "--json")
    return [json.loads(line) for line in out.splitlines()]


def wait_until(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def wait_for_failed(database_url: str, count: int) -> list[dict[str, Any]]:
    """The failed list once it holds `count` events (a file destination's job may hold many)."""
    deadline = time.monotonic() + 30
    while True:
        listing = failed_jobs(database_url)
        if sum(job["events"] for job in listing) >= count:
            return listing
        assert time.monotonic() < deadline, listing
        time.sleep(0.2)


def assert_aborted_masked(database_url: str, sink: Sink, *secrets: str) -> dict[str, Any]:
    """The one event posted, refused for good at its first answer (not sent again), as `sluice
    failed list` shows it: listed with `secrets` masked, in JSON and in the table, never in
    clear. Returns the listed job, for the vendor's words."""
    [failed] = wait_for_failed(database_url, 1)
    assert len(sink.arrivals) == 1 and failed["attempts"] == 1, "a permanent error: not retried"
    shown = "".join(sluice(database_url, "failed", "list", *json) for json in (["--json"], []))
    assert "****" in shown
    assert [secret for secret in secrets if secret in shown] == []
    return failed


def wait_delivered(sink: Sink, wanted: set[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = wanted - {body["messageId"] for body in sink.bodies()}
        if not missing:
            return
        assert time.monotonic() < deadline, f"{len(missing)} acknowledged events not delivered"
        time.sleep(0.5)


def first_arrivals(sink: Sink) -> dict[str, tuple[float, int]]:
    """messageId → (time of its first delivery, how many times it was delivered)."""
    seen: dict[str, tuple[float, int]] = {}
    for arrival in list(sink.delivered):
        message_id = arrival.json()["messageId"]
        first, count = seen.get(message_id, (arrival.at, 0))
        seen[message_id] = (first, count + 1)
    return seen


def assert_user_order(sink: Sink) -> None:
    order: dict[str, list[int]] = defaultdict(list)
    firsts: set[str] = set()
    for arrival in list(sink.delivered):
        body = arrival.json()
        if body["messageId"] not in firsts:
            firsts.add(body["messageId"])
            order[body["userId"]].append(body["properties"]["seq"])
    unordered = [user for user, seqs in order.items() if seqs != sorted(seqs)]
    assert unordered == [], f"first arrivals out of order for {unordered[:5]}"


def working(worker: WorkerProcess, stage: str) -> str | None:
    """The partitions the worker's log last said `stage` works on."""
    said = re.findall(rf"{stage}: working on \d+ partition\(s\): (.+)", worker.output())
    return said[-1] if said else None
