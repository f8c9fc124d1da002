"""What the benchmarks share: a private PostgreSQL, a prepared workspace, a running gateway."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from appliance.embedded import EmbeddedPostgres
from engine import migrate, specs
from engine.control import workspace
from engine.db import connection

WRITE_KEY = "bench-write-key-0123456789"


async def prepare(url: str, destinations: Sequence[specs.DestinationSpec] = ()) -> None:
    """Migrate; create the `bench` source, connected to each of `destinations`."""
    await migrate.apply(url)
    async with connection(url) as conn:
        spec = specs.WorkspaceSpec(
            sources=[specs.SourceSpec(name="bench", write_key=WRITE_KEY)],
            destinations=list(destinations),
            connections=[
                specs.ConnectionSpec(source="bench", destination=d.name) for d in destinations
            ],
        )
        await workspace.apply(conn, spec)


@contextlib.contextmanager
def database(url: str | None, *, local_warehouse: bool = False) -> Iterator[str]:
    """`url`, or a private server's (started as the local warehouse's is, if asked)."""
    if url:
        yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    tmp.chmod(0o755)  # the server may run as another user, which must reach its data dir
    port = free_port()
    server = (EmbeddedPostgres.local_warehouse(tmp, port) if local_warehouse
              else EmbeddedPostgres(tmp, port))  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def gateway(url: str, port: int, workers: int, **settings: str) -> Iterator[None]:
    """A `sluice gateway` with plain HTTP on `port` (and `settings`, SLUICE_* without the
    prefix), until the block ends."""
    env = {
        **os.environ,
        "SLUICE_DATABASE_URL": url,
        "SLUICE_GATEWAY_PORT": str(port),
        "SLUICE_GATEWAY_HOST": "127.0.0.1",
        "SLUICE_GATEWAY_WORKERS": str(workers),
        "SLUICE_LOG_LEVEL": "warning",
        "SLUICE_DATA_DIR": tempfile.mkdtemp(),
        **{f"SLUICE_{name.upper()}": value for name, value in settings.items()},
    }
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "gateway"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the gateway did not start")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
