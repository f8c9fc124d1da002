"""Snowflake as a warehouse, with Snowflake's own client (`snowflake-connector-python`, an
optional dependency: `pip install 'sluice[snowflake]'`): the schema read from
`information_schema`, tables and columns made as loads need them, and each table loaded as
RudderStack loads it — its rows written as gzipped CSV files, `PUT` to a temporary stage of the
session, `COPY INTO` a temporary table (the files are removed from the stage once read), then:

* event tables: one `MERGE` on `ID` with the last received row per id, so a load tried again,
  or an event staged twice, never doubles a row;
* `USERS`: per user, each column's latest value that is not null (a window per column,
  `IGNORE NULLS`), merged into the row the table has;
* tables without an id (`RUDDER_DISCARDS`): only rows the table does not have yet.

Each of these is one statement, so a table is loaded whole or not at all. Types (RudderStack's):
int → number, float → double precision, string and text → varchar, datetime → timestamp_tz,
boolean → boolean, json → variant. Names are upper case, as RudderStack's transformer makes
them for Snowflake.

The client is synchronous: each call runs in a thread of its own, off the event loop.
"""

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from engine.sql import Queries
from engine.warehouses import loadfiles
from engine.warehouses.blocking import Blocking
from engine.warehouses.schema import Change, Columns
from engine.warehouses.settings import SnowflakeSettings
from engine.warehouses.warehouse import Load, Mode, WarehouseError

_Q = Queries.beside(__file__, "snowflake.sql")
TYPES = {
    "int": "number", "float": "double precision", "string": "varchar", "text": "varchar",
    "datetime": "timestamp_tz", "boolean": "boolean", "json": "variant",
}  # fmt: skip
_ABSTRACT = {
    "NUMBER": "int", "FLOAT": "float", "TEXT": "string", "TIMESTAMP_TZ": "datetime",
    "TIMESTAMP_NTZ": "datetime", "TIMESTAMP_LTZ": "datetime", "DATE": "datetime",
    "BOOLEAN": "boolean", "VARIANT": "json", "OBJECT": "json", "ARRAY": "json",
}  # fmt: skip
ID, RECEIVED_AT = '"ID"', '"RECEIVED_AT"'
PART = 64 << 20  # bytes of CSV (before gzip) per file
CONNECT_TIMEOUT = 30
STEP_TIMEOUT = 1800  # seconds a statement may take, retries included (the load is retried)
MISSING = ("Snowflake's client is not installed: pip install 'sluice[snowflake]' "
           "(snowflake-connector-python) into Sluice's environment")  # fmt: skip


class SnowflakeWarehouse:
    def __init__(self, settings: SnowflakeSettings) -> None:
        self._settings = settings
        self._conn: Any = None
        self._database = ""  # quoted, as Snowflake names it (found when connecting)
        self._blocking = Blocking()
        # The session's temporary objects (named apart from another session's all the same).
        token = uuid.uuid4().hex[:12].upper()
        self._temporary = {"stage": _name(f"SLUICE_STAGE_{token}"),
                           "staging": _name(f"SLUICE_STAGING_{token}"),
                           "merged": _name(f"SLUICE_MERGED_{token}")}  # fmt: skip

    async def __aenter__(self) -> Self:
        self._conn = await asyncio.to_thread(self._connect)
        try:
            [(name,)] = await self._call("finding the database", [("current_database", {})])
        except BaseException:
            await asyncio.to_thread(self._conn.close)
            raise
        if name is None:
            await asyncio.to_thread(self._conn.close)
            raise WarehouseError(f"database {self._settings.database} does not exist, or the "
                                 "user's role may not use it")  # fmt: skip
        self._database = _name(name)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)

    def _connect(self) -> Any:
        try:
            import snowflake.connector
        except ImportError:
            raise WarehouseError(MISSING) from None
        s = self._settings
        options: dict[str, Any] = {
            "account": s.account, "user": s.user, "database": s.database,
            "warehouse": s.warehouse, "login_timeout": CONNECT_TIMEOUT,
            "network_timeout": STEP_TIMEOUT,
            "application": "Sluice", "session_parameters": {"TIMEZONE": "UTC"},
        }  # fmt: skip
        if s.role:
            options["role"] = s.role
        if s.useKeyPairAuth:
            options["private_key"] = private_key(s.privateKey, s.privateKeyPassphrase)
        else:
            options["password"] = s.password
        if s.endpoint:
            where = urlsplit(s.endpoint)
            options.update(host=where.hostname, port=where.port or 443, protocol=where.scheme)
        try:
            return snowflake.connector.connect(**options)
        except snowflake.connector.Error as exc:
            raise WarehouseError(f"cannot connect to Snowflake account {s.account}: "
                                 f"{_message(exc)}") from None  # fmt: skip

    async def tables(self, namespace: str) -> dict[str, Columns]:
        found: dict[str, Columns] = {}
        answer = await self._call("reading the schema", [
            ("tables", {"database": self._database, "namespace": _literal(namespace)}),
        ])  # fmt: skip
        for table, column, kind in answer:
            found.setdefault(table, {})[column] = _ABSTRACT.get(str(kind).upper(), "string")
        return found

    async def create_namespace(self, namespace: str) -> None:
        await self._call(f"creating schema {namespace}", [
            ("create_schema", {"database": self._database, "schema": _name(namespace)}),
        ])  # fmt: skip

    async def prepare(self, namespace: str, table: str, change: Change, mode: Mode) -> Columns:
        names = {"database": self._database, "schema": _name(namespace), "table": _name(table)}
        if change.new_table:
            columns = ", ".join(f"{_name(name)} {TYPES.get(kind, 'varchar')}"
                                for name, kind in sorted(change.columns.items()))  # fmt: skip
            steps = [("create_table", {**names, "columns": columns})]
        else:
            steps = [("add_column", {**names, "column": _name(name),
                                     "type": TYPES.get(kind, "varchar")})
                     for name, kind in sorted(change.added.items())]  # fmt: skip
        await self._call(f"preparing {namespace}.{table}", steps)
        return change.columns

    async def load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        await self._blocking.run(self._load, load, rows)

    def _load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        doing = f"loading {load.namespace}.{load.table}"
        columns = [_name(name) for name in load.columns]
        stamps = [_name(name) for name in load.stamps]
        now = f"{_literal(load.now)}::timestamp_tz"
        names = {
            **self._temporary, "database": self._database, "schema": _name(load.namespace),
            "table": _name(load.table), "folder": f"@{self._temporary['stage']}/{uuid.uuid4()}/",
            "columns": ", ".join(columns),
            "typed": ", ".join(f"{c} {TYPES.get(kind, 'varchar')}"
                               for c, kind in zip(columns, load.types, strict=True)),
            "stamped": ", ".join(columns + stamps), "stamps": "".join(f", {now}" for _ in stamps),
            "id": ID, "received_at": RECEIVED_AT,
            "updates": ", ".join([f"{c} = s.{c}" for c in columns if c != ID]
                                 + [f"{c} = {now}" for c in stamps]),
            "inserted": ", ".join([f"s.{c}" for c in columns] + [now for _ in stamps]),
        }  # fmt: skip
        self._run(doing, [("use_schema", names), ("create_stage", names),
                          ("staging_table", names)])  # fmt: skip
        try:
            with tempfile.TemporaryDirectory(prefix="sluice-snowflake-") as folder:
                files = 0
                for number, part in enumerate(loadfiles.csv_files(rows, load.types, PART)):
                    path = Path(folder) / f"{number:05d}.csv.gz"
                    path.write_bytes(part)
                    self._run(doing, [("put", {**names, "file": _literal(path.as_uri())})])
                    path.unlink()
                    files += 1
            if files:
                self._run(doing, [("copy", names)])
            if load.mode == "users":
                latest = ", ".join(
                    f"FIRST_VALUE({c} IGNORE NULLS) OVER (PARTITION BY {ID} ORDER BY "
                    f"{RECEIVED_AT} DESC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND "
                    f"UNBOUNDED FOLLOWING) AS {c}"
                    for c in columns if c != ID
                )  # fmt: skip
                self._run(doing, [("merge_users", {**names, "latest": latest}),
                                  ("replace_users", names), ("drop_merged", names)])  # fmt: skip
            elif load.mode == "merge":
                self._run(doing, [("merge_latest", names)])
            elif load.mode == "new":
                same = " AND ".join(f"(t.{c} = s.{c} OR (t.{c} IS NULL AND s.{c} IS NULL))"
                                    for c in (_name(name) for name in load.key))  # fmt: skip
                self._run(doing, [("insert_new", {**names, "same": same})])
            else:
                self._run(doing, [("insert_all", names)])
        finally:
            with contextlib.suppress(WarehouseError):  # the session's end drops it too
                self._run(doing, [("drop_staging", names)])

    async def _call(self, doing: str, steps: list[tuple[str, dict[str, str]]]) -> list[Any]:
        return await self._blocking.run(self._run, doing, steps)

    def _run(self, doing: str, steps: list[tuple[str, dict[str, str]]]) -> list[Any]:
        """Run queries of `snowflake.sql` in turn; the last one's rows."""
        import snowflake.connector

        found: list[Any] = []
        try:
            with self._conn.cursor() as cur:
                for query, names in steps:
                    self._blocking.step(doing)
                    cur.execute(_Q.filled(query, names))
                    found = cur.fetchall()
        except snowflake.connector.Error as exc:
            raise WarehouseError(f"{doing}: {_message(exc)}") from None
        return found


def _name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _message(exc: Any) -> str:
    text = str(getattr(exc, "msg", "") or exc).strip()
    errno = getattr(exc, "errno", None)
    return f"{text} (error {errno})" if errno else text


def private_key(pem: str, passphrase: str) -> bytes:
    """A PEM private key as the client takes it (DER, unencrypted). (One pasted into a
    one-line field, its line breaks lost, reads as well.)"""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), passphrase.encode() or None)
    except (ValueError, TypeError) as exc:
        raise WarehouseError(f"privateKey cannot be read: {exc}") from None
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip
