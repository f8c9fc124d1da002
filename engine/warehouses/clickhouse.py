"""ClickHouse as a warehouse, over its HTTP interface (it works from ClickHouse 18.16 on, the
version Debian ships): the schema read from `system.columns`, tables and columns made as loads
need them, and each table loaded by streaming its rows (TabSeparated) into a temporary table of
the session, then inserting from it:

* event tables (`ReplacingMergeTree`, sorted by `received_at, id`, partitioned by day as
  RudderStack makes them): one row per id, the last received, and none of an id the table
  already has at a time within the load's (the sort key finds those without reading the whole
  table) — so a load tried again, or an event staged twice, never doubles a row, without
  waiting for ClickHouse to merge parts;
* `users` (`ReplacingMergeTree` by `id`): the user's whole row written again with, per column,
  the latest value that is not null; the row before it goes when ClickHouse merges parts
  (`SELECT … FINAL` sees one row per user at once);
* `rudder_discards`: only rows the table does not have yet.

ClickHouse has no transactions: a load stopped half way leaves the tables it finished loaded,
and the load tried again adds only what is missing. A temporary table lives as long as the
HTTP session (`session_id`) that made it, so one left by a killed worker goes by itself.

Types (RudderStack's): int → Int64, float → Float64, string → String, datetime → DateTime
(whole seconds, UTC), boolean → UInt8; all `Nullable` but the sort key. A `DateTime` holds
1970 to 2105: a time outside that is discarded (`LIMITS`).
"""

import contextlib
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Any, LiteralString, Self

import httpx

from engine.sql import Queries
from engine.warehouses import loadfiles
from engine.warehouses.schema import Change, Columns
from engine.warehouses.settings import ClickHouseSettings
from engine.warehouses.warehouse import Limits, Load, Mode, WarehouseError

_Q = Queries.beside(__file__, "clickhouse.sql")
TYPES = {"int": "Int64", "float": "Float64", "datetime": "DateTime('UTC')", "boolean": "UInt8"}
# A column the warehouse has, by its ClickHouse type (wrappers taken off).
_ABSTRACT = {
    "Int64": "int", "Int32": "int", "Int16": "int", "Int8": "int", "UInt64": "int",
    "UInt32": "int", "UInt16": "int", "Float64": "float", "Float32": "float",
    "String": "string", "DateTime": "datetime", "Date": "datetime", "UInt8": "boolean",
}  # fmt: skip
_WRAPPED = re.compile(
    r"^(?:Nullable|LowCardinality|SimpleAggregateFunction\(anyLast,)\s*\(?(.*)\)$"
)
_ERROR = re.compile(r"^Code: (\d+)[.,] (?:e\.displayText\(\) = )?(?:DB::Exception: )?(.*?)"
                    r"(?:, e\.what\(\) = .*)?$", re.DOTALL)  # fmt: skip
LIMITS: Limits = {"datetime": lambda value: "1970" <= value[:4] <= "2105" and value[4:5] == "-"}
STAGING = "sluice_staging"
NATIVE_PORTS = ("9000", "9440")  # ClickHouse's native protocol, which Sluice does not speak
CHUNK = 1 << 20  # characters of rows per piece of a streamed insert
TIMEOUT = httpx.Timeout(1800.0, connect=10.0)  # a big insert takes minutes
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": ""})


class ClickHouseWarehouse:
    def __init__(self, settings: ClickHouseSettings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        s = self._settings
        scheme = "https" if s.secure else "http"
        verify: Any = not s.skipVerify
        if s.secure and s.caCertificate.strip() and not s.skipVerify:
            verify = ssl.create_default_context(cadata=s.caCertificate)
        self._client = httpx.AsyncClient(
            base_url=f"{scheme}://{s.host}:{s.port}/",
            auth=httpx.BasicAuth(s.user, s.password),
            params={"session_id": f"sluice-{uuid.uuid4().hex}"},
            timeout=TIMEOUT,
            verify=verify,
        )
        try:
            version = await self._query("version", {}, "connecting")
        except WarehouseError:
            await self._client.aclose()
            raise
        if _version(version) >= (19, 5):  # a backlog of many days fills over 100 partitions
            self._client.params = self._client.params.set("max_partitions_per_insert_block", "0")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._client is not None:
            await self._client.aclose()

    async def tables(self, namespace: str) -> dict[str, Columns]:
        found: dict[str, Columns] = {}
        text = await self._query("tables", {"namespace": _literal(namespace)},
                                 "reading the schema")  # fmt: skip
        for line in text.splitlines():
            table, column, kind = (_unescape(part) for part in line.split("\t"))
            found.setdefault(table, {})[column] = _abstract(kind)
        return found

    async def create_namespace(self, namespace: str) -> None:
        await self._query("create_database", {"database": _name(namespace)},
                          f"creating database {namespace}")  # fmt: skip

    async def prepare(self, namespace: str, table: str, change: Change, mode: Mode) -> Columns:
        names = {"database": _name(namespace), "table": _name(table)}
        doing = f"preparing {namespace}.{table}"
        if change.new_table:
            query, keys = _engine(mode, change.columns)
            types = dict(change.columns)
            if "id" in keys:
                types["id"] = "string"  # a key takes any id as its text: it is never discarded
            columns = ", ".join(f"{_name(name)} {_type(kind, name in keys)}"
                                for name, kind in sorted(types.items()))  # fmt: skip
            partition = _PARTITIONS[self._settings.partitionType or "day"]
            await self._query(query, {**names, "columns": columns, "partition": partition,
                                      **_KEYS}, doing)  # fmt: skip
            return types
        for name, kind in sorted(change.added.items()):
            await self._query("add_column", {**names, "column": _name(name),
                                             "type": _type(kind, False)}, doing)  # fmt: skip
        return change.columns

    async def load(self, load: Load, rows: Iterable[Sequence[Any]]) -> None:
        columns = ", ".join(_name(name) for name in load.columns)
        now = _seconds(load.now)
        stamps = "".join(f", toDateTime({_literal(now)}, 'UTC')" for _ in load.stamps)
        names = {
            "database": _name(load.namespace),
            "table": _name(load.table),
            "staging": _name(STAGING),
            "columns": columns,
            "stamped": ", ".join([columns, *(_name(name) for name in load.stamps)]),
            "stamps": stamps,
            **_KEYS,
        }
        doing = f"loading {load.namespace}.{load.table}"
        # A sort key cannot be null: an event table's time it cannot hold (discarded) sorts at
        # the epoch. (An id is text, which takes any value: it is never discarded.)
        keyed = load.mode in ("merge", "append")
        nulls = ["1970-01-01 00:00:00" if name == "received_at" and keyed else
                 "" if name == "id" and load.mode != "new" else "\\N"
                 for name in load.columns]  # fmt: skip
        if load.mode == "append":
            end = "".join(f"\t{now}" for _ in load.stamps)
            body = _tab_separated(load.types, nulls, rows, end)
            await self._query("insert_table", names, doing, body)
            return
        await self._query("drop_staging", names, doing)
        await self._query("staging_table", names, doing)
        try:
            body = _tab_separated(load.types, nulls, rows)
            await self._query("insert_staging", names, doing, body)
            if load.mode == "users":
                latest = ", ".join(
                    _name(name) if name == "id" else
                    f"argMax({_name(name)}, `sluice_by`) AS {_name(name)}"
                    for name in load.columns
                )  # fmt: skip
                await self._query("insert_users", {**names, "latest": latest,
                                                   "by": "`sluice_by`"}, doing)  # fmt: skip
            elif load.mode == "merge":
                await self._query("insert_latest", names, doing)
            else:
                key = ", ".join(f"ifNull(toString({c}), ''), isNull({c})"
                                for c in (_name(name) for name in load.key))  # fmt: skip
                await self._query("insert_new", {**names, "key": key}, doing)
        finally:
            with contextlib.suppress(WarehouseError):  # the session's end drops it too
                await self._query("drop_staging", names, doing)

    async def _query(self, query: LiteralString, names: dict[str, str], doing: str,
                     rows: AsyncIterator[bytes] | None = None) -> str:  # fmt: skip
        """Run a query of `clickhouse.sql`; with `rows`, an insert of them."""
        assert self._client is not None, "used outside `async with`"
        statement = _Q.filled(query, names)
        try:
            if rows is None:
                answer = await self._client.post("", content=statement.encode())
            else:
                answer = await self._client.post("", params={"query": statement}, content=rows)
        except httpx.HTTPError as exc:
            raise WarehouseError(f"{doing}: {self._unreachable(exc)}") from None
        if answer.status_code != 200:
            raise WarehouseError(f"{doing}: {_message(answer.text)} (HTTP {answer.status_code})")
        return answer.text

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        s = self._settings
        text = f"cannot reach ClickHouse at {s.host}:{s.port}: {type(exc).__name__}: {exc}"
        if str(s.port) in NATIVE_PORTS:
            text += (f" (port {s.port} is ClickHouse's native protocol; Sluice uses its HTTP "
                     "interface: port 8123, or 8443 with secure)")  # fmt: skip
        return text


_KEYS = {"id": "`id`", "received_at": "`received_at`"}
_PARTITIONS = {
    "day": "toDate(`received_at`)", "week": "toStartOfWeek(`received_at`)",
    "month": "toStartOfMonth(`received_at`)", "quarter": "toStartOfQuarter(`received_at`)",
}  # fmt: skip


def _engine(mode: Mode, columns: Columns) -> tuple[LiteralString, tuple[str, ...]]:
    """How a new table is made for loads of `mode`, and its columns that cannot be null."""
    if mode == "users":
        return "create_users", ("id",)
    if mode != "new" and "id" in columns and "received_at" in columns:
        return "create_events", ("id", "received_at")
    return "create_plain", ()


def _version(text: str) -> tuple[int, ...]:
    """`18.16.1` as (18, 16, 1); what is not a number as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.strip().split("."))


def _type(kind: str, key: bool) -> str:
    name = TYPES.get(kind, "String")
    return name if key else f"Nullable({name})"


def _abstract(kind: str) -> str:
    while (wrapped := _WRAPPED.match(kind)) is not None:
        kind = wrapped.group(1)
    return _ABSTRACT.get(kind.split("(", 1)[0], "string")


async def _tab_separated(
    kinds: Sequence[str], nulls: Sequence[str], rows: Iterable[Sequence[Any]], end: str = ""
) -> AsyncIterator[bytes]:
    """Rows as TabSeparated text, a piece of about `CHUNK` characters at a time (`nulls`: what
    each column's null is written as; `end`: more values, the same for every row)."""
    for piece in loadfiles.pieces(rows, kinds, _WRITERS, _text, separator="\t", null=nulls,
                                  size=CHUNK, end=end):  # fmt: skip
        yield piece.encode()


def _text(value: Any) -> str:
    return str(value).translate(_ESCAPES)


def _seconds(moment: str) -> str:
    """An ISO time (UTC, `…Z`) as ClickHouse reads a `DateTime('UTC')`."""
    return f"{moment[:10]} {moment[11:19]}"


_WRITERS: dict[str, loadfiles.Writer] = {
    "int": str,
    "float": repr,
    "boolean": lambda value: "1" if value else "0",
    "datetime": _seconds,
}


def _name(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "0": "\0"}.get(m[1], m[1]), text)


def _message(text: str) -> str:
    """ClickHouse's error, without its stack and class names."""
    text = text.strip()
    found = _ERROR.match(text)
    if found is not None:
        text = f"{found[2].strip()} (code {found[1]})"
    return text[:1000]
