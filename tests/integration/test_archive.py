"""The raw-event archive against a real S3 API (moto on loopback, checking credentials), with
real gateway and worker processes: what arrives, a `kill -9` between upload and position
commit, and `sluice replay` reading it back."""

import gzip
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import psycopg

from tests.conftest import ingested
from tests.delivery import connect, post, wait_until
from tests.s3server import REGION, S3Server
from tests.servers import GatewayProcess, running_worker, start_worker
from tests.sink import Sink

BUCKET = "archive"
KEY = re.compile(r"^raw/([0-9a-f-]{36})/(\d{4}-\d{2}-\d{2})/(\d{2})/(\d+)\.json\.gz$")


def archive_settings(server: S3Server, **more: str) -> dict[str, str]:
    return {
        "archive_bucket": BUCKET, "archive_prefix": "raw/", "archive_endpoint": server.endpoint,
        "archive_region": REGION, "archive_access_key_id": server.admin.id,
        "archive_secret_access_key": server.admin.secret, "archive_batch_seconds": "0.5",
        **more,
    }  # fmt: skip


def events(count: int) -> list[dict[str, str]]:
    return [
        {"type": "track", "event": f"E{i}", "userId": f"u{i % 7}", "messageId": str(uuid4())}
        for i in range(count)
    ]


def archived_lines(server: S3Server) -> list[bytes]:
    return [
        line
        for body in server.objects(BUCKET).values()
        for line in gzip.decompress(body).splitlines()
    ]


def test_every_event_is_archived_once_gzipped_per_source_and_hour(
    s3_server: S3Server, workspace_config: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    with running_worker(workspace_config, tmp_path, **archive_settings(s3_server,
                        archive_batch_events="40")):  # fmt: skip
        for _ in range(4):
            post(gateway, events(25))
        wait_until(lambda: len(archived_lines(s3_server)) >= 100)
    rows = ingested(workspace_config)
    objects = s3_server.objects(BUCKET)
    assert len(objects) >= 3  # 40 events a file at most
    by_id = {str(row["id"]): row for row in rows}
    for key, body in objects.items():
        match = KEY.match(key)
        assert match, key
        first = by_id[match[4]]  # the key names the file's first event
        received = datetime.fromisoformat(first["payload"]["receivedAt"])
        assert (match[2], match[3]) == (f"{received:%Y-%m-%d}", f"{received:%H}")
        assert gzip.decompress(body).splitlines()[0] == stored_payload(
            workspace_config, first["id"]
        )
        assert s3_server.head(BUCKET, key)["ContentType"] == "application/gzip"
    lines = archived_lines(s3_server)
    assert sorted(lines) == sorted(stored_payload(workspace_config, row["id"]) for row in rows)
    assert len(set(lines)) == len(lines) == 100


def test_a_kill_between_upload_and_commit_doubles_nothing(
    s3_server: S3Server, workspace_config: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    url = workspace_config
    settings = archive_settings(s3_server)
    post(gateway, events(30))
    with psycopg.connect(url) as blocker:
        # The archiver's position commit waits behind this lock: kill it in that window.
        blocker.execute("SELECT * FROM archive_positions FOR UPDATE")
        worker = start_worker(url, tmp_path, settings)
        try:
            wait_until(lambda: len(s3_server.uploads) >= 1)
            time.sleep(0.3)
        finally:
            worker.kill()
        blocker.rollback()
        positions = blocker.execute("SELECT max(id) FROM archive_positions").fetchone()
        assert positions == (0,)  # uploaded, never committed
    first_upload = s3_server.uploads[0]
    assert len(archived_lines(s3_server)) == 30
    post(gateway, events(30))
    with running_worker(url, tmp_path, **settings):
        wait_until(lambda: len(archived_lines(s3_server)) >= 60)
        time.sleep(1.5)  # nothing more arrives
    lines = archived_lines(s3_server)
    assert len(lines) == len(set(lines)) == 60
    assert s3_server.uploads.count(first_upload) >= 2  # replaced, not doubled


def test_replay_an_hour_sends_the_archived_events_again(
    s3_server: S3Server, workspace_config: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    url = workspace_config
    settings = archive_settings(s3_server)
    sent = events(20)
    with Sink() as sink:
        connect(url, hook=sink.url)
        with running_worker(url, tmp_path, **settings):
            post(gateway, sent)
            sink.wait_for(20)
            wait_until(lambda: len(archived_lines(s3_server)) >= 20)
            delivered = sorted(body["messageId"] for body in sink.bodies())
            sink.clear()  # wipe the destination's copy
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            out = replay(url, settings, "--source", "website", "--from",
                         (hour - timedelta(hours=1)).isoformat(), "--to",
                         (hour + timedelta(hours=1)).isoformat())  # fmt: skip
            sink.wait_for(20)
            time.sleep(0.5)
            again = sorted(body["messageId"] for body in sink.bodies())
    assert delivered == sorted(e["messageId"] for e in sent)
    assert again == delivered  # the same events, once each, with their messageIds
    assert "replayed 20 event(s) as 20 job(s)" in out


def replay(url: str, settings: dict[str, str], *args: str) -> str:
    env = {**os.environ, "SLUICE_DATABASE_URL": url,
           **{f"SLUICE_{k.upper()}": v for k, v in settings.items()}}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "appliance", "replay", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored_payload(url: str, ingest_id: int) -> bytes:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT payload::text FROM ingested WHERE id = %s", [ingest_id])
        text = row.fetchone()
    assert text is not None
    return str(text[0]).encode()


def test_an_archive_with_wrong_credentials_says_why_and_catches_up_once_fixed(
    s3_server: S3Server, workspace_config: str, gateway: GatewayProcess, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    wrong = archive_settings(s3_server, archive_secret_access_key="not-the-archive-secret")
    with running_worker(workspace_config, tmp_path, **wrong) as worker:
        post(gateway, events(10))
        wait_until(lambda: "SignatureDoesNotMatch" in worker.output())
        assert not s3_server.objects(BUCKET)
        assert "not-the-archive-secret" not in worker.output()
        assert "archive upload of s3://archive/raw/" in worker.output()
    # Delivery never waited for the archive; with the right keys it catches up, once each.
    with running_worker(workspace_config, tmp_path, **archive_settings(s3_server)):
        wait_until(lambda: len(archived_lines(s3_server)) >= 10)
        time.sleep(1.0)
    assert len(archived_lines(s3_server)) == 10
