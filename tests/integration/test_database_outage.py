"""PostgreSQL stops in the middle of a stream: no 200 for anything not committed."""

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from appliance.embedded import EmbeddedPostgres
from engine import migrate
from tests.conftest import WRITE_KEY, apply_config, ingested
from tests.servers import free_port, running_gateway, server_dir


class Sender(threading.Thread):
    """Posts small batches with unique messageIds until stopped, remembering each answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acked: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=10) as client:
            while not self.stop.is_set():
                ids = [f"m-{n}-{i}" for i in range(5)]
                n += 1
                batch = [
                    {"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ids
                ]
                try:
                    status = client.post("/v1/batch", json={"batch": batch}).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses[status] += 1
                if status == 200:
                    self.acked.extend(ids)
                time.sleep(0.005)

    def wait_for(self, status: int, at_least: int, timeout: float = 30) -> None:
        start = self.statuses[status]
        deadline = time.monotonic() + timeout
        while self.statuses[status] - start < at_least:
            assert time.monotonic() < deadline, f"no {status} answers; saw {self.statuses}"
            time.sleep(0.05)


def test_no_acknowledgement_without_a_commit(tmp_path: Path) -> None:
    with server_dir() as pgdir:
        server = EmbeddedPostgres(pgdir, free_port())
        url = server.start()
        try:
            asyncio.run(migrate.apply(url))
            apply_config(url, f"sources: [{{name: website, write_key: {WRITE_KEY}}}]")
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
        finally:
            server.stop()

    assert set(sender.statuses) <= {200, 503}, sender.statuses
    missing = [m for m in sender.acked if m not in stored]
    assert missing == [], f"{len(missing)} acknowledged events were not stored"
    assert max(stored.values()) == 1
