"""A PostgreSQL warehouse end to end: the real Python SDK → gateway → worker (processing,
staging, the load stage) → tables in a real PostgreSQL; `sluice warehouse sync` and `status`;
a worker killed with SIGKILL in the middle of a load, and every event still there once."""

import json
import os
from pathlib import Path
from typing import Any

import httpx
import psycopg
import rudderstack.analytics as rudder

from appliance.roles import LOAD_NICE
from tests.conftest import WRITE_KEY, warehouse_settings
from tests.delivery import connect_destinations, sluice, wait_until
from tests.integration.test_sdks import send_every_call_type
from tests.servers import GatewayProcess, WorkerProcess, start_worker

# Staged within a second; loaded only when a sync asks (or once a day).
STAGE_FAST = "{file_seconds: 1, min_backoff_seconds: 0.1, max_backoff_seconds: 0.5}"


def connect_warehouse(database_url: str, warehouse_url: str, **more: Any) -> None:
    config = warehouse_settings(warehouse_url, syncFrequency="1440", **more)
    connect_destinations(database_url, ("wh", "postgres", config), delivery=STAGE_FAST)


def query(url: str, text: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(text).fetchall()


def staged_events(database_url: str) -> int:
    """Events the worker has staged (their jobs delivered to the staging area)."""
    found = query(database_url, "SELECT coalesce(sum(j.events), 0) FROM jobs j JOIN "
                  "job_attempts a ON a.job_id = j.id WHERE a.state = 'delivered'")  # fmt: skip
    return int(found[0][0])


def send_and_sync(workspace_config: str, gateway: GatewayProcess, tmp_path: Path,
                  destination: str) -> str:  # fmt: skip
    """Every call type sent with the real Python SDK (ids `wh-<call type>`), staged by a
    worker, then `sluice warehouse sync`: what it printed."""
    worker = start_worker(workspace_config, tmp_path)
    try:
        client = rudder.Client(WRITE_KEY, host=gateway.url, max_retries=0)
        ids = {kind: f"wh-{kind}" for kind in
               ("identify", "track", "page", "screen", "group", "alias", "anonymous")}  # fmt: skip
        send_every_call_type(client, ids)
        client.flush()
        client.join()
        wait_until(lambda: staged_events(workspace_config) >= len(ids), timeout=60)
        return sluice(workspace_config, "warehouse", "sync", "--destination", destination)
    finally:
        worker.stop()


def test_sdk_events_reach_the_warehouse_tables(
    workspace_config: str, warehouse_url: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    connect_warehouse(workspace_config, warehouse_url)
    shown = send_and_sync(workspace_config, gateway, tmp_path, "wh")
    assert "loaded" in shown and "into website" in shown, shown
    tables = {row[0] for row in query(warehouse_url, "SELECT table_name FROM "
              "information_schema.tables WHERE table_schema = 'website'")}  # fmt: skip
    assert {"tracks", "order_completed", "anonymous_visit", "identifies", "users", "pages",
            "screens", "groups", "aliases"} <= tables  # fmt: skip
    order = query(warehouse_url, "SELECT id, user_id, order_id, total, context_library_name, "
                  "context_destination_type FROM website.order_completed")  # fmt: skip
    assert order == [("wh-track", "user-1", "o-1", 42.5, "analytics-python", "POSTGRES")]
    users = query(warehouse_url, "SELECT id, email, plan FROM website.users")
    assert users == [("user-1", "ada@example.com", "pro")]
    status = json.loads(sluice(workspace_config, "warehouse", "status", "--json"))
    [wh] = status
    assert wh["loads"][0]["status"] == "loaded"
    assert wh["loads"][0]["tables"]["tracks"] == 2
    assert {t["table_name"] for t in wh["schema"]} == tables
    assert wh["staged"]["events"] == 0


def test_a_worker_killed_during_a_load_loses_and_doubles_nothing(
    workspace_config: str, warehouse_url: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    connect_warehouse(workspace_config, warehouse_url)

    def post(numbers: range) -> None:
        batch = [{"type": "track", "event": f"Event {n % 7}", "userId": f"u{n % 50}",
                  "messageId": f"k-{n}", "properties": {"n": n}} for n in numbers]  # fmt: skip
        with httpx.Client(base_url=gateway.url, auth=(WRITE_KEY, "")) as client:
            assert client.post("/v1/batch", json={"batch": batch}).status_code == 200

    total = 1000
    first = range(0, 100)  # loaded before the kill: makes the tables, and stays whole
    worker = start_worker(workspace_config, tmp_path)
    try:  # (a worker left running would fail the next test too)
        post(first)
        wait_until(lambda: staged_events(workspace_config) >= len(first), timeout=60)
        sluice(workspace_config, "warehouse", "sync", "--destination", "wh")
        assert query(warehouse_url, "SELECT count(*) FROM website.tracks") == [(len(first),)]
        # The next load waits for this lock on one of its tables, in the middle of its work
        # (tables before it may be loaded already), for as long as the test needs. (SHARE: a
        # lock that takes no transaction id, which would hold back the worker's reading of
        # the ingest log, on this same PostgreSQL server.)
        with psycopg.connect(warehouse_url) as holder:
            holder.execute("LOCK TABLE website.tracks IN SHARE MODE")
            post(range(len(first), total))
            wait_until(lambda: staged_events(workspace_config) >= total, timeout=60)
            sluice(workspace_config, "warehouse", "sync", "--destination", "wh", "--wait", "0")
            loading = "SELECT id FROM warehouse_uploads WHERE status = 'loading'"
            wait_until(lambda: query(workspace_config, loading), timeout=60)
            worker.kill()  # SIGKILL, in the middle of the load
            killed = query(workspace_config, loading)
            holder.rollback()
    finally:
        worker.stop()
    assert len(killed) == 1, killed

    worker = start_worker(workspace_config, tmp_path)  # the same host: its staged files wait
    try:
        sluice(workspace_config, "warehouse", "sync", "--destination", "wh")
    finally:
        worker.stop()
    counts = query(warehouse_url, "SELECT count(*), count(DISTINCT id) FROM website.tracks")
    assert counts == [(total, total)]
    sixth = query(warehouse_url, "SELECT count(*), count(DISTINCT id) FROM website.event_6")
    expected = sum(1 for n in range(total) if n % 7 == 6)
    assert sixth == [(expected, expected)]
    # The killed load was done again, and every load is done.
    uploads = query(workspace_config, "SELECT id, attempts, status FROM warehouse_uploads")
    assert {status for _, _, status in uploads} == {"loaded"}, uploads
    assert [attempts for id_, attempts, _ in uploads if id_ == killed[0][0]] == [2], uploads


def test_a_failing_warehouse_keeps_everything_until_it_is_fixed(
    workspace_config: str, warehouse_url: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    connect_warehouse(workspace_config, warehouse_url, password="wrong-password-1")
    worker = start_worker(workspace_config, tmp_path)
    try:
        post = [{"type": "page", "name": "Home", "userId": "u", "messageId": f"p-{n}"}
                for n in range(20)]  # fmt: skip
        assert httpx.post(f"{gateway.url}/v1/batch", json={"batch": post},
                          auth=(WRITE_KEY, "")).status_code == 200  # fmt: skip
        wait_until(lambda: staged_events(workspace_config) >= 20, timeout=60)
        shown = sluice(workspace_config, "warehouse", "sync", "--destination", "wh")
        assert "#1 failed" in shown and "cannot connect to" in shown, shown
        assert "wrong-password-1" not in shown
        connect_warehouse(workspace_config, warehouse_url)  # the fix

        def synced() -> bool:  # (once the worker has heard of the fix: within moments)
            return "#1 loaded" in sluice(
                workspace_config, "warehouse", "sync", "--destination", "wh"
            )

        wait_until(synced, timeout=30)
    finally:
        worker.stop()
    assert query(warehouse_url, "SELECT count(*) FROM website.pages") == [(20,)]


def test_the_load_stage_runs_below_the_stages_that_deliver(worker: WorkerProcess) -> None:
    def stages() -> dict[str, int]:  # the worker's child processes' stage → niceness
        found = {}
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                stat = (proc / "stat").read_text()
                command = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == worker.proc.pid and b"--stage" in command:
                stage = command[command.index(b"--stage") + 1].decode()
                found[stage] = os.getpriority(os.PRIO_PROCESS, int(proc.name))
        return found

    wait_until(lambda: stages().get("load") == LOAD_NICE)
    assert stages()["process"] == os.getpriority(os.PRIO_PROCESS, worker.proc.pid) == 0
