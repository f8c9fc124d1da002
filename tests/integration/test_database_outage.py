"""PostgreSQL stops in the middle of a stream: no 200 for anything not committed."""

import time
from collections import Counter
from pathlib import Path

import httpx

from appliance.embedded import EmbeddedPostgres
from tests.conftest import WRITE_KEY, ingested
from tests.servers import running_gateway, start_gateway
from tests.traffic import Sender


def test_no_acknowledgement_without_a_commit(
    private_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = private_postgres
    with running_gateway(url, tmp_path) as gateway:
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
