"""A real ClickHouse server for tests: Debian's `clickhouse-server` (`make test` installs it),
started in a temporary directory on free ports of 127.0.0.1, with a user `sluice` who needs a
password. One server serves the test session; each test gets a database of its own."""

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port

BINARY = "/usr/sbin/clickhouse-server"
USER, PASSWORD = "sluice", "clickhouse-test-password"
_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{path}/server.log</log><errorlog>{path}/error.log</errorlog>
  </logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{path}/data/</path>
  <tmp_path>{path}/tmp/</tmp_path>
  <mark_cache_size>5368709</mark_cache_size>
  <users_config>{path}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
</yandex>
"""
_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <{user}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


@dataclass(frozen=True)
class ClickHouse:
    port: int
    database: str

    def settings(self, **more: Any) -> dict[str, Any]:
        """A ClickHouse destination's settings for this server's database."""
        return {"host": "127.0.0.1", "port": str(self.port), "database": self.database,
                "user": USER, "password": PASSWORD, **more}  # fmt: skip

    def query(self, text: str) -> list[list[str]]:
        """The rows of a query, each a list of its values as TabSeparated text."""
        answer = httpx.post(f"http://127.0.0.1:{self.port}/", content=text.encode(),
                            auth=(USER, PASSWORD), timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return [line.split("\t") for line in answer.text.splitlines()]


@pytest.fixture(scope="session")
def clickhouse_port() -> Iterator[int]:
    path = Path(tempfile.mkdtemp(prefix="sluice-clickhouse-"))
    http = free_port()
    (path / "config.xml").write_text(_CONFIG.format(path=path, http=http, tcp=free_port()))
    (path / "users.xml").write_text(_USERS.format(user=USER, password=PASSWORD))
    server = subprocess.Popen([BINARY, f"--config-file={path / 'config.xml'}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait(http, server)
        yield http
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def clickhouse(clickhouse_port: int) -> Iterator[ClickHouse]:
    """An empty database (which the loads create) on the session's server."""
    server = ClickHouse(clickhouse_port, f"warehouse_{uuid.uuid4().hex[:12]}")
    yield server
    server.query(f"DROP DATABASE IF EXISTS {server.database}")


def _wait(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, f"clickhouse-server exited with {server.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("clickhouse-server did not answer in 30 s")
