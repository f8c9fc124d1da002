"""Fixtures: a real PostgreSQL for the session, a fresh database per test, real gateways.

PostgreSQL is the embedded server Sluice itself ships (started here in a temporary directory),
unless SLUICE_TEST_DATABASE_URL names an existing server to use instead.
"""

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from appliance.embedded import EmbeddedPostgres
from engine import migrate, specs
from engine.control import workspace
from engine.db import connection
from tests.bigquery import bigquery_double, bigquery_project  # noqa: F401  (fixtures)
from tests.clickhouse import clickhouse, clickhouse_port  # noqa: F401  (fixtures, for all)
from tests.s3server import s3_server  # noqa: F401  (a fixture, for every test module)
from tests.servers import (
    GatewayProcess,
    WorkerProcess,
    free_port,
    running_worker,
    server_dir,
    start_gateway,
)
from tests.snowflake import snowflake_account, snowflake_endpoint  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("SLUICE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with server_dir() as path:
        server = EmbeddedPostgres(path, free_port())
        try:
            yield server.start()
        finally:
            server.stop()


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    name = f"sluice_template_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    asyncio.run(migrate.apply(make_conninfo(postgres_url, dbname=name)))
    yield name
    with _admin(postgres_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _copy_of(postgres_url: str, template_database: str) -> Iterator[str]:
    name = f"sluice_test_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    yield make_conninfo(postgres_url, dbname=name)
    with _admin(postgres_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    yield from _copy_of(postgres_url, template_database)


@pytest.fixture
def other_database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    """A second, empty database (another installation's)."""
    yield from _copy_of(postgres_url, template_database)


@pytest.fixture
def warehouse_url(postgres_url: str) -> Iterator[str]:
    """An empty database playing a customer's PostgreSQL warehouse."""
    name = f"warehouse_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_url, dbname=name)
    with _admin(postgres_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def warehouse_settings(url: str, **more: Any) -> dict[str, Any]:
    """A PostgreSQL warehouse destination's settings for the database at `url`."""
    parts = conninfo_to_dict(url)
    return {"host": parts["host"], "port": str(parts.get("port", "5432")),
            "database": parts["dbname"], "user": parts["user"],
            "password": parts.get("password", ""), **more}  # fmt: skip


def apply_config(database_url: str, text: str) -> workspace.ApplyReport:
    async def go() -> workspace.ApplyReport:
        async with connection(database_url) as conn:
            return await workspace.apply(conn, specs.parse(text))

    return asyncio.run(go())


def ingested(database_url: str) -> list[dict[str, Any]]:
    """Every row of the ingest log, oldest first, payload decoded."""
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT l.id, s.name AS source, l.partition, l.message_id, l.payload "
            "FROM ingested l LEFT JOIN sources s ON s.id = l.source_id ORDER BY l.id",
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


WRITE_KEY = "test-write-key-website"
DISABLED_KEY = "test-write-key-disabled"


@pytest.fixture
def workspace_config(database_url: str) -> str:
    apply_config(
        database_url,
        f"""
sources:
  - {{name: website, write_key: {WRITE_KEY}}}
  - {{name: legacy, write_key: {DISABLED_KEY}, enabled: false}}
""",
    )
    return database_url


@pytest.fixture
def gateway(workspace_config: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = start_gateway(workspace_config, tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def private_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test's own, migrated, with the website source: free to stop."""
    with server_dir() as pgdir:
        server = EmbeddedPostgres(pgdir, free_port())
        url = server.start()
        try:
            asyncio.run(migrate.apply(url))
            apply_config(url, f"sources: [{{name: website, write_key: {WRITE_KEY}}}]")
            yield server, url
        finally:
            server.stop()


@pytest.fixture
def worker(workspace_config: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    with running_worker(workspace_config, tmp_path) as process:
        yield process
