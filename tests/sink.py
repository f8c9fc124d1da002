"""A local HTTP server playing a vendor: records every request, answers as a test tells it.

It runs its own event loop in a thread, so tests drive it from plain synchronous code.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers import free_port


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str:
        """A header's value whatever the case of its name (HTTP/2 and hyper send lower case)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), "")


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str = '{"ok": true}'

    @classmethod
    def json(cls, status: int, value: Any) -> "Answer":
        """An answer with a JSON body, labelled as one."""
        return cls(status, {"Content-Type": "application/json"}, body=json.dumps(value))


Behaviour = Callable[[Arrival], Answer]


class Sink:
    """`arrivals` holds every request received; `delivered` those answered 2xx."""

    def __init__(
        self, behaviour: Behaviour = lambda arrival: Answer(), host: str = "127.0.0.1"
    ) -> None:
        self.behaviour = behaviour
        self.arrivals: list[Arrival] = []
        self.delivered: list[Arrival] = []
        self.host = host  # (another than loopback: for a container of the tests' own)
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "Sink":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def clear(self) -> None:
        """Forget every request received so far (as if the destination's copy were wiped)."""
        with self._lock:
            self.arrivals.clear()
            self.delivered.clear()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [a.json() for a in self.delivered]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Arrival]:
        """Wait until `count` requests were answered 2xx; fail the test if they are not."""
        return self._wait(self.delivered, count, "deliveries", timeout)

    def wait_for_arrivals(self, count: int, timeout: float = 60.0) -> list[Arrival]:
        """Wait until `count` requests arrived, however they were answered."""
        return self._wait(self.arrivals, count, "arrivals", timeout)

    def _wait(self, seen: list[Arrival], count: int, what: str, timeout: float) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(seen) >= count:
                    return list(seen)
            time.sleep(0.05)
        raise AssertionError(f"{len(seen)} of {count} {what} within {timeout} s")

    async def _handle(self, request: web.Request) -> web.Response:
        arrival = Arrival(
            request.method, request.path, dict(request.query), dict(request.headers),
            await request.read(), time.time(),
        )  # fmt: skip
        answer = self.behaviour(arrival)
        with self._lock:
            self.arrivals.append(arrival)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        with self._lock:
            if 200 <= answer.status < 300:
                self.delivered.append(arrival)
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)  # (held answers: cut)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()
