"""PostgreSQL stops in the middle of a stream: no 200 for anything not committed (to the
database, or, with the spool, to this host's disk), and nothing spooled lost or doubled."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import rudderstack.analytics as rudder

from appliance.embedded import EmbeddedPostgres
from engine.db import connection_pool
from engine.gateway.log_table import LogTable
from engine.gateway.spool import Spool
from engine.store.ingest_log import Row, copy_text
from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess, running_gateway, start_gateway
from tests.traffic import Sender


def test_no_acknowledgement_without_a_commit(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    with running_gateway(url, tmp_path, spool_max_mb="0") as gateway:  # (no spool)
        sender = Sender(gateway.url)
        sender.start()
        sender.wait_for(200, at_least=20)
        server.stop()
        sender.wait_for(503, at_least=5)
        assert httpx.get(f"{gateway.url}/health").status_code == 503
        server.start()
        sender.wait_for(200, at_least=20)
        sender.stop.set()
        sender.join()
    stored = Counter(row["message_id"] for row in ingested(url))

    assert set(sender.statuses) <= {200, 503}, sender.statuses
    missing = [m for m in sender.acked if m not in stored]
    assert missing == [], f"{len(missing)} acknowledged events were not stored"
    assert max(stored.values()) == 1


def test_a_gateway_started_without_its_database_answers_503_then_recovers(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    server.stop()
    gateway = start_gateway(url, tmp_path, healthy=False)
    try:
        event = {"userId": "u", "event": "E"}
        refused = httpx.post(f"{gateway.url}/v1/track", json=event, auth=(WRITE_KEY, ""))
        assert refused.status_code == 503  # not 401: the key is unknown only for now
        assert httpx.get(f"{gateway.url}/health").status_code == 503
        server.start()
        deadline = time.monotonic() + 30
        while (
            httpx.post(f"{gateway.url}/v1/track", json=event, auth=(WRITE_KEY, "")).status_code
            != 200
        ):
            assert time.monotonic() < deadline, gateway.output()
            time.sleep(0.2)
    finally:
        gateway.stop()
    assert len(ingested(url)) == 1


def _stored_exactly_once(url: str, acked: list[str]) -> None:
    stored = Counter(row["message_id"] for row in ingested(url))
    missing = [m for m in acked if m not in stored]
    assert missing == [], f"{len(missing)} acknowledged events were not stored"
    assert max(stored.values()) == 1
    with psycopg.connect(url) as conn:  # each user's events in the order they were accepted
        for (user,) in conn.execute("SELECT DISTINCT payload->>'userId' FROM ingested"):
            seqs = [r[0] for r in conn.execute(
                "SELECT (payload->'properties'->>'seq')::int FROM ingested"
                " WHERE payload->>'userId' = %s ORDER BY tx, id", (user,))]  # fmt: skip
            assert seqs == sorted(seqs), f"{user}'s events out of order"


def _drained(spool: Path, gateway: GatewayProcess) -> None:
    """Wait until every spool file was moved into the database (and deleted)."""
    deadline = time.monotonic() + 30
    while list(spool.glob("*.spool")):
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.2)


def test_with_the_spool_every_event_is_accepted_while_the_database_is_away(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    with running_gateway(url, tmp_path) as gateway:
        sender = Sender(gateway.url, users=3)
        sender.start()
        sender.wait_for(200, at_least=20)
        server.stop()
        sender.wait_for(200, at_least=50)  # into the spool on this host's disk
        assert gateway.metric("sluice_gateway_spooled_events_total") > 0
        server.start()
        sender.wait_for(200, at_least=20)
        _drained(tmp_path / "spool", gateway)
        sender.stop.set()
        sender.join()
    assert set(sender.statuses) == {200}, sender.statuses
    _stored_exactly_once(url, sender.acked)


def test_events_spooled_by_a_gateway_killed_are_moved_in_by_the_next(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    gateway = start_gateway(url, tmp_path)
    try:
        server.stop()
        sender = Sender(gateway.url, users=2)
        sender.start()
        sender.wait_for(200, at_least=30)
        sender.stop.set()
        sender.join()
        children = Path(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children")
        for pid in children.read_text().split():  # kill -9: the worker, then its parent
            os.kill(int(pid), signal.SIGKILL)
        gateway.proc.kill()
        gateway.proc.wait()
    finally:
        gateway.stop()
    assert list((tmp_path / "spool").glob("*.spool")), "nothing was spooled"
    server.start()
    with running_gateway(url, tmp_path) as successor:
        _drained(tmp_path / "spool", successor)
    assert set(sender.statuses) == {200}, sender.statuses
    _stored_exactly_once(url, sender.acked)


def test_past_its_bound_the_spool_answers_503(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    with running_gateway(url, tmp_path, spool_max_mb="1") as gateway:
        server.stop()
        sender = Sender(gateway.url, batch=50)  # ~5 kB a request: the 1 MB is soon full
        sender.start()
        sender.wait_for(503, at_least=3)
        server.start()
        sender.wait_for(200, at_least=20)
        sender.stop.set()
        sender.join()
        _drained(tmp_path / "spool", gateway)
    assert sender.statuses[200] > 0 and sender.statuses[503] > 0
    _stored_exactly_once(url, sender.acked)


async def test_a_spooled_row_the_database_refuses_is_listed_and_the_rest_moved_in(
    workspace_config: str, tmp_path: Path
) -> None:
    # A row PostgreSQL's json type refuses (an invalid escape, which the gateway's own checks
    # would have caught first) once blocked its whole spool file, and every later commit of
    # its gateway went to the spool.
    with psycopg.connect(workspace_config) as conn:
        found = conn.execute("SELECT id FROM sources WHERE name = 'website'").fetchone()
    assert found is not None
    rows = [
        Row(str(found[0]), 1, "2026-12-06T10:00:00.000Z", f"m-{n}",
            ('{"type": "track", "userId": "u", "event": "' + event + '"}').encode())
        # (U+2028 is a line break to str.splitlines, never to COPY: once it split a row too)
        for n, event in enumerate(("Before\u2028", "\\u00zz", "After"))
    ]  # fmt: skip
    pool = connection_pool(workspace_config)
    await pool.open()
    log_table = LogTable(pool)
    await log_table.start()
    spool = Spool(tmp_path / "spool", 1 << 20, pool, log_table)
    spool.start()
    assert await spool.append(copy_text(rows), len(rows))
    deadline = time.monotonic() + 30
    while spool.holding:
        assert time.monotonic() < deadline, "the spool was never drained"
        await asyncio.sleep(0.1)
    await spool.stop()
    await log_table.stop()
    await pool.close()
    events = [r["payload"]["event"] for r in ingested(workspace_config)]
    assert events == ["Before\u2028", "After"]
    with psycopg.connect(workspace_config) as conn:
        (reason,) = conn.execute("SELECT reason FROM gateway_rejections").fetchone() or ("",)
        counted = conn.execute(
            "SELECT sum(events) FROM stats_minute WHERE outcome = 'rejected'"
        ).fetchone()
    assert reason.startswith("the database refused it")
    assert counted == (1,)
    assert list((tmp_path / "spool").iterdir()) == []


def _status(url: str, workdir: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "status", "--json"],
        env={**os.environ, "SLUICE_DATABASE_URL": url, "SLUICE_DATA_DIR": str(workdir),
             "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def test_sluice_status_shows_the_spool_of_this_host_and_what_every_gateway_reported(
    workspace_config: str, tmp_path: Path
) -> None:
    # The database takes heartbeats but not events: they wait in the spool, and say so.
    with psycopg.connect(workspace_config, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'not now' USING ERRCODE = '55000'; END $$;"
            "CREATE TRIGGER refuse BEFORE INSERT ON ingest_events"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    with running_gateway(workspace_config, tmp_path) as gateway:
        for i in range(5):
            event = {"userId": "u", "event": "E", "messageId": f"m{i}"}
            answer = httpx.post(f"{gateway.url}/v1/track", json=event, auth=(WRITE_KEY, ""))
            assert answer.status_code == 200
        deadline = time.monotonic() + 10
        while True:  # (a gateway beats at once when its spool starts holding events)
            code, status = _status(workspace_config, tmp_path)
            [process] = status["processes"]
            if process["spool_bytes"] > 0:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert code == 0 and status["database"] == "ok"
        assert status["spool"]["spool_bytes"] > 0 and status["spool"]["spool_files"] == 1
        with psycopg.connect(workspace_config, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON ingest_events")
        _drained(tmp_path / "spool", gateway)
        deadline = time.monotonic() + 10
        while _status(workspace_config, tmp_path)[1]["processes"][0]["spool_bytes"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert [row["message_id"] for row in ingested(workspace_config)] == [f"m{i}" for i in range(5)]
    # With the database away, this host's spool is still read from its disk.
    code, status = _status("postgresql://nobody@127.0.0.1:9/none", tmp_path)
    assert code == 1 and str(status["database"]).startswith("unreachable")
    assert status["spool"] == {"directory": str(tmp_path / "spool"), "spool_bytes": 0,
                               "spool_files": 0, "spool_damaged": 0}  # fmt: skip


def test_rudder_sdk_python_loses_nothing_while_the_database_is_away(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    # rudder-sdk-python with its default retries, sending while PostgreSQL is stopped: every
    # event is accepted into the spool (answered 200) and reaches the database once it is back.
    server, url = private_postgres
    with running_gateway(url, tmp_path) as gateway:
        errors: list[Exception] = []
        client = rudder.Client(WRITE_KEY, host=gateway.url, on_error=lambda e, b: errors.append(e))
        server.stop()
        for i in range(20):
            client.track("u", "During the outage", {"seq": i}, message_id=f"outage-{i}")
        client.flush()
        client.join()
        assert errors == []
        assert len(list((tmp_path / "spool").glob("*.spool"))) == 1
        server.start()
        _drained(tmp_path / "spool", gateway)
    stored = [r["message_id"] for r in ingested(url)]
    assert stored == [f"outage-{i}" for i in range(20)]


def test_a_commit_slower_than_its_bound_is_given_up_and_spooled(
    workspace_config: str, tmp_path: Path
) -> None:
    with psycopg.connect(workspace_config, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " PERFORM pg_sleep(8); RETURN NULL; END $$;"
            "CREATE TRIGGER slow BEFORE INSERT ON ingest_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION slow()"
        )
    with running_gateway(workspace_config, tmp_path) as gateway:
        started = time.monotonic()
        event = {"userId": "u", "event": "E", "messageId": "slow-1"}
        answer = httpx.post(f"{gateway.url}/v1/track", json=event, auth=(WRITE_KEY, ""), timeout=30)
        assert answer.status_code == 200
        assert time.monotonic() - started < 7  # (5 s, not the 8 the commit would take)
        assert gateway.metric("sluice_gateway_spooled_events_total") == 1
        assert "the COPY was too slow: cancelled, not made" in gateway.output()
        with psycopg.connect(workspace_config, autocommit=True) as conn:
            conn.execute("DROP TRIGGER slow ON ingest_events")
        _drained(tmp_path / "spool", gateway)
    assert [row["message_id"] for row in ingested(workspace_config)] == ["slow-1"]
