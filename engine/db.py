"""Connections to PostgreSQL: the per-process pool and one-off admin connections."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from engine.errors import DatabaseUnavailable


def connection_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """A pool that is not yet open; callers `await pool.open()` inside their event loop.

    A short `timeout` makes a request fail fast with "database unavailable" instead of hanging
    while PostgreSQL is down; the pool keeps reconnecting in the background.
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=5.0,
        open=False,
        kwargs={"application_name": "sluice", "client_encoding": "utf8"},
    )


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One connection for a short administrative task, committed when the block succeeds."""
    try:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from exc
