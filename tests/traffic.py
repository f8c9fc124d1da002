"""Client traffic for tests: senders that remember exactly which events were acknowledged."""

import threading
import time
from collections import Counter

import httpx

from tests.conftest import WRITE_KEY


class Sender(threading.Thread):
    """Posts small batches with unique messageIds until stopped, remembering each answer."""

    def __init__(
        self, url: str, prefix: str = "m", users: int = 1, user_prefix: str = "u", batch: int = 5
    ) -> None:
        super().__init__(daemon=True)
        self.batch = batch  # events per request
        self.url = url
        self.prefix = prefix
        self.users = users
        self.user_prefix = user_prefix  # (senders with their own users: each keeps its order)
        self.acked: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=10) as client:
            while not self.stop.is_set():
                ids = [f"{self.prefix}-{n}-{i}" for i in range(self.batch)]
                n += 1
                # Each user's events carry increasing `seq` numbers, for order checks downstream.
                first = n * self.batch
                batch = [
                    {"type": "track", "userId": f"{self.user_prefix}{(first + i) % self.users}",
                     "event": "E", "messageId": m, "properties": {"seq": first + i}}
                    for i, m in enumerate(ids)
                ]  # fmt: skip
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
