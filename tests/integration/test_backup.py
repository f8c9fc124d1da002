"""`sluice backup` / `sluice restore` against real PostgreSQL databases: one installation's
workspace, people, tokens and undelivered work carried over to another."""

import asyncio
import json
import stat
from pathlib import Path

import psycopg

from engine.control import accounts, tokens
from engine.db import connection
from tests.conftest import apply_config
from tests.integration.test_events import stored, track
from tests.integration.test_workspace import sluice

WORKSPACE = """
sources: [{name: web, write_key: backup-web-key-123}]
transformations:
  - {name: tag, code: "export function transformEvent(e) { e.tagged = true; return e; }"}
destinations:
  - name: hook
    type: webhook
    config: {webhookUrl: "https://hook.example.com/in", headers: [{from: X-Key, to: hook-secret}]}
    delivery: {concurrency: 4}
    alerts: {failure_percent: 5, webhook_url: "https://chat.example.com/T/secret"}
connections: [{source: web, destination: hook, transformation: tag}]
"""


async def _people(database_url: str) -> str:
    async with connection(database_url) as conn:
        await accounts.create(conn, "ops@example.com", "editor", "a long enough password 1")
        secret, _ = await tokens.create(conn, "ci", "viewer", "admin@example.com")
    return secret


def _job(database_url: str, message_id: str, settled: str | None) -> None:
    """A job for `hook`, settled as `settled` (None: waiting)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "WITH j AS (INSERT INTO jobs (destination_id, source_id, partition, user_key,"
            " ingest_tx, ingest_id, received_at, message_id, event_type, event_name, request)"
            " SELECT d.id, s.id, 3, 'u1', '0', 0, now(), %s, 'track', 'Bought',"
            '        \'{"method": "POST", "url": "https://hook.example.com/in"}\''
            " FROM destinations d, sources s RETURNING id, created_at, destination_id)"
            " INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state)"
            " SELECT id, created_at, destination_id, 1, %s FROM j WHERE %s::text IS NOT NULL",
            (message_id, settled, settled),
        )


def test_a_backup_carries_an_installation_over(
    database_url: str, other_database_url: str, tmp_path: Path
) -> None:
    apply_config(database_url, WORKSPACE)
    secret = asyncio.run(_people(database_url))
    stored(database_url, "web", track(1), track(2))  # not processed yet
    _job(database_url, "waiting", None)
    _job(database_url, "retrying", "retry")
    _job(database_url, "done", "delivered")
    file = tmp_path / "sluice.backup"
    made = sluice(database_url, "backup", str(file), "--pending")
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    document = json.loads(file.read_text())
    assert document["format"] == "sluice-backup" and document["version"] == 1
    assert [j["message_id"] for j in document["pending"]["jobs"]] == ["waiting", "retrying"]
    assert len(document["pending"]["events"]) == 2

    restored = sluice(other_database_url, "restore", str(file))
    assert restored.returncode == 0, restored.stderr
    assert "pending events: 2, pending jobs: 2" in restored.stdout
    before = sluice(database_url, "config", "export").stdout
    after = sluice(other_database_url, "config", "export").stdout
    assert after == before and "hook-secret" in after and "chat.example.com/T/secret" in after

    async def check() -> None:
        async with connection(other_database_url) as conn:
            user = await accounts.sign_in(conn, "ops@example.com", "a long enough password 1",
                                          None)  # fmt: skip
            assert user.role == "editor"
            token = await tokens.verify(conn, secret)
            assert token is not None and token.name == "ci" and token.role == "viewer"

    asyncio.run(check())
    with psycopg.connect(other_database_url) as conn:
        jobs = conn.execute(
            "SELECT j.message_id, d.name, j.request->>'url' FROM jobs j"
            " JOIN destinations d ON d.id = j.destination_id ORDER BY j.id"
        ).fetchall()
        events = conn.execute("SELECT payload->>'messageId' FROM ingested ORDER BY id")
        assert [e[0] for e in events.fetchall()] == [track(1)["messageId"],
                                                     track(2)["messageId"]]  # fmt: skip
    assert jobs == [("waiting", "hook", "https://hook.example.com/in"),
                    ("retrying", "hook", "https://hook.example.com/in")]  # fmt: skip


def test_restore_refuses_what_is_not_a_backup(database_url: str, tmp_path: Path) -> None:
    for content, said in (
        ("not json", "not a JSON document"),
        ('{"sources": []}', "not a Sluice backup"),
        ('{"format": "sluice-backup", "version": 99}', "backups are version 99"),
        ('{"format": "sluice-backup", "version": 1, "users": 3}', "damaged"),
    ):
        file = tmp_path / "bad.json"
        file.write_text(content)
        done = sluice(database_url, "restore", str(file))
        assert done.returncode == 1 and said in done.stderr, done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
