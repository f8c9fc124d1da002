"""Connections to PostgreSQL: the per-process pool, one-off admin connections, the one place
where psycopg's errors become Sluice's, and reading rows into named types."""

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any, LiteralString, TypeVar

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import args_row, class_row, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.errors import Conflict, DatabaseError, DatabaseUnavailable, ValueRefused
from engine.sql import Queries

_Q = Queries.beside(__file__, "db.sql")
log = logging.getLogger(__name__)

Pool = AsyncConnectionPool  # what callers outside the engine hold: they pass its connections in
Connection = psycopg.AsyncConnection[Any]
Params = Mapping[str, Any] | None
Query = LiteralString | sql.Composed  # a named query, or one composed with identifiers
T = TypeVar("T")

# What every pool's sessions take (where no one has given it a value). No JIT: Sluice's statements
# are short, and compiling one costs PostgreSQL 100-200 ms of CPU each time it runs. The
# processor's duplicate check, reckoned over `jit_above_cost` once its tables had grown past
# their statistics, was compiled batch after batch: most of PostgreSQL's CPU under load.
_EVERY_SESSION = {"jit": "off"}


def connection_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, settings: Mapping[str, str] | None = None
) -> AsyncConnectionPool:
    """A pool that is not yet open; callers `await pool.open()` inside their event loop. Its
    sessions take `settings` (server settings a session may change), and JIT compilation off,
    where no one has given them a value: the server's configuration or the connection's own
    options win.

    A short `timeout` makes a request fail fast with "database unavailable" instead of hanging
    while PostgreSQL is down. A short `reconnect_timeout` keeps the pool from backing off for
    minutes during an outage: each wait for a connection starts a fresh attempt, so service
    resumes as soon as PostgreSQL is back.
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=5.0,
        reconnect_timeout=2.0,
        open=False,
        kwargs={"application_name": "sluice", "client_encoding": "utf8"},
        configure=partial(_configure, dict(settings or {})),
        reset=_transactional,
    )


async def _configure(settings: dict[str, str], conn: Connection) -> None:
    """A new session's settings: those of every pool, then the pool's own (apart: a server
    refusing one of the pool's costs it no other)."""
    await _apply_settings(_EVERY_SESSION, conn)
    if settings:
        await _apply_settings(settings, conn)


async def _apply_settings(settings: dict[str, str], conn: Connection) -> None:
    """Settings that tune, never needed: a server refusing one (or a pooler in between) only
    costs a warning, not the connection."""
    try:
        await conn.execute(
            _Q["apply_settings"], {"names": list(settings), "settings": list(settings.values())}
        )
        await conn.commit()
    except psycopg.Error as exc:
        await conn.rollback()
        log.warning("sessions go without the settings %s: %s", ", ".join(settings), describe(exc))


async def _transactional(conn: Connection) -> None:
    """A connection goes back to the pool as the next borrower expects it: in transactions."""
    if conn.autocommit:
        await conn.set_autocommit(False)


@contextmanager
def translated() -> Iterator[None]:
    """psycopg's errors raised in the block as Sluice's: DatabaseUnavailable when the server
    cannot be reached (or no pooled connection comes in time), Conflict for a row breaking a
    uniqueness rule, ValueRefused for a value it refused (or one past a limit of PostgreSQL's:
    an index entry too large, which psycopg files with the unreachable), DatabaseError for any
    other failure."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from exc
    except psycopg.errors.ProgramLimitExceeded as exc:
        raise ValueRefused(describe(exc), exc.diag.message_primary or type(exc).__name__) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {describe(exc)}") from exc
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(describe(exc)) from exc
    except psycopg.DataError as exc:
        reason = exc.diag.message_primary or str(exc) or type(exc).__name__
        raise ValueRefused(describe(exc), reason) from exc
    except psycopg.Error as exc:
        raise DatabaseError(describe(exc)) from exc


@asynccontextmanager
async def connection(url: str, *, autocommit: bool = False) -> AsyncIterator[Connection]:
    """One connection for a short administrative task, committed when the block succeeds (or,
    `autocommit`, statement by statement)."""
    with translated():
        async with await psycopg.AsyncConnection.connect(url, autocommit=autocommit) as conn:
            yield conn


@asynccontextmanager
async def borrowed(
    pool: AsyncConnectionPool, *, autocommit: bool = False, timeout: float | None = None
) -> AsyncIterator[Connection]:
    """A connection of `pool` for one piece of work, committed when the block succeeds (or,
    `autocommit`, statement by statement: for work that commits batch by batch itself); psycopg's
    errors translated (`translated`). `timeout`: how long to wait for a free connection, if not
    the pool's own."""
    with translated():
        async with pool.connection(timeout) as conn:
            if autocommit:
                await conn.set_autocommit(True)  # (the pool turns it off again)
            yield conn


async def one_snapshot(conn: Connection) -> None:
    """The rest of this transaction reads one snapshot of the database, read only: what a page
    counts agrees with what it lists, whatever commits meanwhile. First in the transaction."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def describe(exc: psycopg.Error) -> str:
    """A database error for a log line, without its CONTEXT (which can quote event data)."""
    primary = exc.diag.message_primary
    if primary is None and isinstance(exc, psycopg.OperationalError):
        primary = str(exc).strip()  # connection trouble: no row data in it
    return f"{type(exc).__name__}: {primary or '(see the database server log)'}"


def naming(query: LiteralString, **tables: str) -> sql.Composed:
    """A query whose `{name}`s are names chosen at run time (a partition, a channel), quoted
    as identifiers."""
    return sql.SQL(query).format(**{slot: sql.Identifier(table) for slot, table in tables.items()})


async def rows(conn: Connection, query: Query, params: Params, shape: type[T]) -> list[T]:
    """The rows of a query as `shape`s, by column name: a dataclass or NamedTuple, or a msgspec
    Struct (converted: its nested fields, JSON columns, are validated into their own types)."""
    if issubclass(shape, msgspec.Struct):
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return msgspec.convert(await cur.fetchall(), list[shape])  # type: ignore[valid-type]
    async with conn.cursor(row_factory=class_row(shape)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def row(conn: Connection, query: Query, params: Params, shape: type[T]) -> T | None:
    """The first row of a query as a `shape` (see `rows`); None when there is none."""
    found = await rows(conn, query, params, shape)
    return found[0] if found else None


async def tuples(conn: Connection, query: Query, params: Params, shape: type[T]) -> list[T]:
    """The rows of a query as `shape`s made from the columns in order: for hot paths reading
    thousands of rows into a NamedTuple whose fields are the query's columns."""
    async with conn.cursor(row_factory=args_row(shape)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def column(conn: Connection, query: Query, params: Params = None) -> list[Any]:
    """The first column of every row."""
    cur = await conn.execute(query, params)
    return [found[0] for found in await cur.fetchall()]


async def value(conn: Connection, query: Query, params: Params = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    cur = await conn.execute(query, params)
    found = await cur.fetchone()
    return None if found is None else found[0]
