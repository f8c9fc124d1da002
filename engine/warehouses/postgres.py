"""PostgreSQL as a warehouse: the schema read from `information_schema`, tables and columns
made as loads need them, and each table loaded in one transaction — its rows copied
(`COPY … FROM STDIN`) into a temporary table like it, then merged:

* event tables: rows of the same ids deleted, then one row per id inserted (the last
  received), so a load tried again, or an event staged twice, never doubles a row;
* `users`: per user, each column's latest value that is not null, across the row the table
  has and the new ones (RudderStack's users merge);
* tables without an id (`rudder_discards`): only rows the table does not have yet.

Types: int → bigint, float → numeric, string and text → text, datetime → timestamptz,
boolean → boolean, json → jsonb (RudderStack's). Event tables get an index on `id`, which the
merge's delete uses; `users` one too.
"""

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, LiteralString, Self

import psycopg
from psycopg import sql

from engine.sql import Queries
from engine.warehouses.schema import Change, Columns
from engine.warehouses.settings import PostgresSettings
from engine.warehouses.warehouse import Load, Mode, WarehouseError

_Q = Queries.beside(__file__, "postgres.sql")
TYPES: dict[str, LiteralString] = {
    "int": "bigint", "float": "numeric", "string": "text", "text": "text",
    "datetime": "timestamptz", "boolean": "boolean", "json": "jsonb",
}  # fmt: skip
# A column the warehouse has, by its PostgreSQL type (a table made by hand may use others).
_ABSTRACT = {
    "bigint": "int", "integer": "int", "smallint": "int",
    "numeric": "float", "double precision": "float", "real": "float",
    "text": "string", "character varying": "string", "character": "string",
    "timestamp with time zone": "datetime", "timestamp without time zone": "datetime",
    "date": "datetime", "boolean": "boolean", "jsonb": "json", "json": "json",
}  # fmt: skip
CONNECT_TIMEOUT = 10
# A load sorts each table's new rows by id, in memory rather than in temporary files.
WORK_MEM = "64MB"


class PostgresWarehouse:
    """PostgreSQL's dialect and load method; a subclass says another's (Redshift's) where it
    differs: its types, its queries (looked up in its own file first), how rows get in."""

    TYPES: Mapping[str, LiteralString] = TYPES
    ABSTRACT: Mapping[str, str] = _ABSTRACT
    QUERIES: tuple[Queries, ...] = (_Q,)
    STAMP = sql.SQL("%(now)s")  # the load's time, where a row's `uuid_ts` is set

    def __init__(self, settings: PostgresSettings) -> None:
        self._settings = settings
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Self:
        s = self._settings
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                host=s.host, port=int(s.port), dbname=s.database, user=s.user,
                password=s.password, sslmode=s.sslMode, connect_timeout=CONNECT_TIMEOUT,
                application_name="sluice-warehouse", options=self._options(),
            )  # fmt: skip
        except psycopg.Error as exc:
            raise WarehouseError(
                f"cannot connect to {s.host}:{s.port}/{s.database}: {exc}"
            ) from None
        return self

    def _options(self) -> str:
        """Settings of the session (libpq's `options`)."""
        return f"-c work_mem={WORK_MEM}"

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._conn is not None:
            await self._conn.close()

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        assert self._conn is not None, "used outside `async with`"
        return self._conn

    async def tables(self, namespace: str) -> dict[str, Columns]:
        """The namespace's tables and their columns, by abstract type."""
        found: dict[str, Columns] = {}
        async with _translated("reading the schema"), self.conn.cursor() as cur:
            await cur.execute(self._query("tables"), {"namespace": namespace})
            for table, column, kind in await cur.fetchall():
                found.setdefault(table, {})[column] = self.ABSTRACT.get(kind, "string")
            await self.conn.commit()
        return found

    async def create_namespace(self, namespace: str) -> None:
        async with _translated(f"creating schema {namespace}"), self.conn.transaction():
            await self._run("create_schema", {"schema": sql.Identifier(namespace)})

    async def prepare(self, namespace: str, table: str, change: Change, mode: Mode) -> Columns:
        """Make the table what the load needs: created, or given its new columns."""
        names = {"schema": sql.Identifier(namespace), "table": sql.Identifier(table)}
        async with _translated(f"preparing {namespace}.{table}"), self.conn.transaction():
            if change.new_table:
                columns = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(name), self._type(kind))
                    for name, kind in sorted(change.columns.items())
                )
                await self._create(table, {**names, "columns": columns}, change.columns, mode)
            else:
                for name, kind in sorted(change.added.items()):
                    await self._run("add_column", {**names, "column": sql.Identifier(name),
                                                   "type": self._type(kind)})  # fmt: skip
        return change.columns

    async def _create(self, table: str, names: dict[str, sql.Composable], columns: Columns,
                      mode: Mode) -> None:  # fmt: skip
        """A new table; event tables and `users` get an index on `id`, which merges use."""
        await self._run("create_table", names)
        if mode != "new":
            index = sql.Identifier(f"{table[:55]}_id_idx")
            await self._run("create_index", {**names, "index": index,
                                             "column": sql.Identifier("id")})  # fmt: skip

    async def load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        """Copy a table's rows in and merge them, in one transaction."""
        columns = [sql.Identifier(name) for name in load.columns]
        stamps = [sql.Identifier(name) for name in load.stamps]
        names = {
            "schema": sql.Identifier(load.namespace),
            "table": sql.Identifier(load.table),
            "staging": sql.Identifier("sluice_staging"),
            "merged": sql.Identifier("sluice_merged"),
            "columns": sql.SQL(", ").join(columns),
            "stamped": sql.SQL(", ").join(columns + stamps),
            "stamps": sql.SQL("").join(sql.SQL(", ") + self.STAMP for _ in stamps),
            "id": sql.Identifier("id"),
            "received_at": sql.Identifier("received_at"),
        }
        async with _translated(f"loading {load.namespace}.{load.table}"), self.conn.transaction():
            await self._run("staging_table", names)
            await self._copy(load, names, rows)
            stamped = {"now": self._now(load.now)}
            if load.mode == "users":
                latest = sql.SQL(", ").join(
                    self._latest(sql.Identifier(name)) for name in load.columns if name != "id"
                )
                await self._run("merge_users", {**names, "latest": latest})
                await self._run("replace_users", names)
                await self._run("insert_users", names, stamped)
                await self._run("drop_merged", names)
            elif load.mode == "merge":
                await self._run("delete_loaded", names)
                await self._run("insert_latest", names, stamped)
            elif load.mode == "new":
                same = sql.SQL(" AND ").join(self._same(sql.Identifier(name)) for name in load.key)
                await self._run("insert_new", {**names, "same": same}, stamped)
            else:
                await self._run("insert_all", names, stamped)
            await self._run("drop_staging", names)

    async def _copy(self, load: Load, names: dict[str, sql.Composable],
                    rows: Iterable[Sequence[Any]]) -> None:  # fmt: skip
        """The rows into the staging table."""
        async with self.conn.cursor() as cur, cur.copy(self._statement("copy", names)) as copy:
            for row in rows:
                await copy.write_row(row)

    def _latest(self, column: sql.Identifier) -> sql.Composable:
        """A user's latest value of `column` that is not null, as `merge_users` selects it."""
        return sql.SQL(
            "(array_agg({c} ORDER BY {r} DESC NULLS LAST) FILTER (WHERE {c} IS NOT NULL))[1] AS {c}"
        ).format(c=column, r=sql.Identifier("received_at"))

    def _same(self, column: sql.Identifier) -> sql.Composable:
        """A key column the same in the table's row `t` and the new row `s` (nulls alike)."""
        return sql.SQL("t.{c} IS NOT DISTINCT FROM s.{c}").format(c=column)

    def _now(self, moment: str) -> str:
        """The load's time (ISO 8601, UTC) as `STAMP` takes it."""
        return moment

    def _type(self, kind: str) -> sql.SQL:
        return sql.SQL(self.TYPES.get(kind, self.TYPES["string"]))

    def _query(self, name: str) -> LiteralString:
        for queries in self.QUERIES:
            if name in queries:
                return queries[name]
        raise KeyError(name)

    def _statement(self, query: str, names: Mapping[str, sql.Composable]) -> sql.Composed:
        text = self._query(query)
        return sql.SQL(text).format(**{k: v for k, v in names.items() if "{" + k + "}" in text})

    async def _run(
        self,
        query: str,
        names: Mapping[str, sql.Composable],
        params: dict[str, Any] | None = None,
    ) -> None:
        await self.conn.execute(self._statement(query, names), params)


class _translated:
    """The warehouse's own error, said with what was being done."""

    def __init__(self, doing: str) -> None:
        self._doing = doing

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if isinstance(exc, psycopg.Error):
            raise WarehouseError(f"{self._doing}: {_message(exc)}") from None


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip()
    if diag.sqlstate:
        text = f"{text} (SQLSTATE {diag.sqlstate})"
    return text
