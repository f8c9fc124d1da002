"""Snowflake played by fakesnow in its server mode (Snowflake's SQL on DuckDB behind
Snowflake's HTTP API), which the real `snowflake-connector-python` connects to as to an
account: one server for the test session, in a thread of the test process on a free port of
127.0.0.1, reached by the worker processes too; each test gets a database of its own. fakesnow
does not check passwords."""

import logging
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakesnow
import pytest
import snowflake.connector
from fakesnow.transforms import stage


@dataclass(frozen=True)
class Snowflake:
    endpoint: str
    database: str

    def settings(self, **more: Any) -> dict[str, Any]:
        """A Snowflake destination's settings for this database."""
        return {"account": "fakesnow", "database": self.database, "warehouse": "LOADING",
                "user": "fake", "password": "snow", "endpoint": self.endpoint,
                **more}  # fmt: skip

    def query(self, text: str) -> list[tuple[Any, ...]]:
        host, port = self.endpoint.removeprefix("http://").split(":")
        options = {"account": "fakesnow", "user": "fake", "password": "snow", "host": host,
                   "port": int(port), "protocol": "http", "database": self.database,
                   "network_timeout": 20}  # fmt: skip
        with snowflake.connector.connect(**options) as conn, conn.cursor() as cur:
            cur.execute(text)
            return list(cur.fetchall())


@pytest.fixture(scope="session")
def snowflake_endpoint() -> Iterator[str]:
    logging.getLogger("fakesnow").setLevel(logging.WARNING)
    try:
        with fakesnow.server() as options:
            yield f"http://{options['host']}:{options['port']}"
    finally:  # the stages' files: a directory fakesnow makes when imported, and leaves
        shutil.rmtree(stage.LOCAL_BUCKET_PATH, ignore_errors=True)


@pytest.fixture
def snowflake_account(snowflake_endpoint: str) -> Snowflake:
    """A new database (the one destination settings name) on the session's server (which
    keeps it in memory, and has no DROP DATABASE)."""
    server = Snowflake(snowflake_endpoint, f"WAREHOUSE_{uuid.uuid4().hex[:12].upper()}")
    server.query(f'CREATE DATABASE IF NOT EXISTS "{server.database}"')
    return server
