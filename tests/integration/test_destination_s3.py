"""S3 end to end: gateway → worker → the batch router → a real S3 API (moto) on loopback."""

import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.delivery import connect_destinations, failed_jobs, post, sluice, wait_for_failed
from tests.s3server import S3Server
from tests.servers import GatewayProcess, running_worker, start_worker

BUCKET = "events"
QUICK = "{file_seconds: 0.5, min_backoff_seconds: 0.1, max_backoff_seconds: 0.5}"


def delivered(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(j.events), 0) FROM job_attempts a"
            " JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at"
            " WHERE a.state = 'delivered'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_delivered(database_url: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while delivered(database_url) < count:
        assert time.monotonic() < deadline, f"{delivered(database_url)} of {count} delivered"
        time.sleep(0.2)


def batch(first: int, count: int) -> list[dict[str, object]]:
    return [
        {"type": "track", "userId": f"u{n % 7}", "event": "E", "messageId": f"m-{n}",
         "properties": {"n": n}}
        for n in range(first, first + count)
    ]  # fmt: skip


def test_events_land_gzipped_under_their_keys_exactly_once_across_a_kill(
    workspace_config: str, gateway: GatewayProcess, s3_server: S3Server, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    config = s3_server.settings(BUCKET, prefix="raw/")
    connect_destinations(workspace_config, ("lake", "s3", config), delivery=QUICK)
    worker = start_worker(workspace_config, tmp_path)
    try:
        # The attempt rows cannot be written while this lock is held: the first file is
        # uploaded, then the worker dies before it could mark its events delivered.
        with psycopg.connect(workspace_config) as blocker:
            blocker.execute("LOCK TABLE job_attempts IN SHARE MODE")
            post(gateway, batch(0, 50))
            deadline = time.monotonic() + 30
            while not s3_server.uploads:
                assert time.monotonic() < deadline, "no upload"
                time.sleep(0.02)
            worker.kill()
            blocker.rollback()
        assert delivered(workspace_config) == 0
        post(gateway, batch(50, 30))
    finally:
        worker.kill()
    with running_worker(workspace_config, tmp_path):
        wait_delivered(workspace_config, 80)
    objects = s3_server.objects(BUCKET, "raw/")
    source = next(iter(objects)).split("/")[1]
    assert all(key.startswith(f"raw/{source}/") and key.endswith(".json.gz") for key in objects)
    events = s3_server.events(BUCKET, "raw/")
    counts = Counter(event["messageId"] for event in events)
    assert sorted(counts) == sorted(f"m-{n}" for n in range(80))
    assert set(counts.values()) == {1}, "an event was stored twice"
    # The file uploaded before the kill was replaced under the same key, not doubled.
    assert s3_server.uploads.count(s3_server.uploads[0]) == 2


def test_wrong_credentials_fail_visibly_and_events_arrive_once_the_config_is_fixed(
    workspace_config: str, gateway: GatewayProcess, s3_server: S3Server, tmp_path: Path
) -> None:
    s3_server.create_bucket(BUCKET)
    good = s3_server.settings(BUCKET)
    wrong = {**good, "accessKey": "not-the-secret-at-all"}
    connect_destinations(workspace_config, ("lake", "s3", wrong), delivery=QUICK)
    with running_worker(workspace_config, tmp_path):
        post(gateway, batch(0, 5))
        failed = wait_for_failed(workspace_config, 5)
        assert {f["status_code"] for f in failed} == {403}
        assert all("SignatureDoesNotMatch" in f["error"] for f in failed), failed[0]["error"]
        # The events travel in bundles (one job per source and partition), each naming its
        # events: together, the five, once each.
        members = [m for f in failed for m in f["member_ids"]]
        assert sum(f["events"] for f in failed) == len(set(members)) == len(members) == 5
        listing = sluice(workspace_config, "failed", "list")
        assert "not-the-secret-at-all" not in listing and good["accessKey"] not in listing
        connect_destinations(workspace_config, ("lake", "s3", good), delivery=QUICK)
        sluice(workspace_config, "failed", "replay", "--destination", "lake")
        wait_delivered(workspace_config, 5)
    assert failed_jobs(workspace_config) == []
    assert sorted(e["messageId"] for e in s3_server.events(BUCKET)) == [f"m-{n}" for n in range(5)]
