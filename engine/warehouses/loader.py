"""One load: a source's staged files into its schema in the warehouse.

Per table: the columns the staged rows need are added (a new table is created), then its rows
are loaded — each value converted to its column's type where the column cannot take it as it
is (`conversions.py`), or else left out of the row and written to `rudder_discards` with the
reason. Each table is loaded whole or not at all (in one transaction, or one statement) and
merged on `id`, so a load that stops half way (a crash, a warehouse going away) is simply done
again: the tables it had loaded get the same rows once more, which replace themselves (or, in
ClickHouse, are left out).
"""

import asyncio
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from engine.warehouses import conversions, javascript, names, schema, staging
from engine.warehouses.names import Provider
from engine.warehouses.rows import Row
from engine.warehouses.schema import Columns
from engine.warehouses.staging import Staged
from engine.warehouses.warehouse import Limits, Load, Mode, Warehouse

INT64 = 2**63
DISCARDS = "rudder_discards"
USERS = "users"
_DISCARD_COLUMNS = {
    "column_name": "string",
    "column_value": "string",
    "reason": "string",
    "received_at": "datetime",
    "row_id": "string",
    "table_name": "string",
    "uuid_ts": "datetime",
}
_DISCARD_KEY = ("table_name", "row_id", "column_name")
STAMPS = {"": ("uuid_ts",), "BQ": ("loaded_at", "uuid_ts")}
# `\u0000` in JSON text, not preceded by an escaped backslash of its own.
_NUL_ESCAPE = re.compile(r"((?:^|[^\\])(?:\\\\)*)\\u0000")


@dataclass
class Loaded:
    tables: dict[str, int]  # table → rows loaded
    discards: int
    schema: dict[str, Columns]  # the tables the load touched, as they are now


async def load(
    sessions: Sequence[Warehouse],
    provider: Provider,
    namespace: str,
    files: Sequence[Staged],
    *,
    append: bool = False,
    limits: Limits | None = None,
) -> Loaded:
    """Load `files` (staged for one source) into `namespace`, a table at a time on each of
    `sessions` (while the warehouse merges one table, the next one's rows are on their way).
    `limits`: what a column of a type can hold in this warehouse, where that is less than the
    type says (a value beyond it is discarded)."""
    run = _Load(provider, namespace, files, append, limits or {})
    run.existing = await sessions[0].tables(namespace)
    if not run.existing:
        await sessions[0].create_namespace(namespace)
    waiting = sorted(run.staged)

    async def work(warehouse: Warehouse) -> None:
        while waiting:
            await run.table(warehouse, waiting.pop(0))

    try:
        async with asyncio.TaskGroup() as group:  # a failure stops the other sessions' work
            for session in sessions:
                group.create_task(work(session))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure says why the load failed
    if run.discards:
        await run.load_discards(sessions[0])
    return run.loaded


class _Load:
    """One load: what is staged, what the warehouse has, what was loaded and discarded."""

    def __init__(self, provider: Provider, namespace: str, files: Sequence[Staged],
                 append: bool, limits: Limits) -> None:  # fmt: skip
        self.namespace, self.files, self.append, self.limits = namespace, files, append, limits
        self.safe = _Names(provider)
        self.now = _iso(datetime.now(UTC))
        self.batch = _batch(files)
        self.staged: dict[str, Columns] = {}
        self.merge_rules: set[str] = set()
        for file in files:
            for table, block in file.summary.tables.items():
                schema.stage(self.staged.setdefault(table, {}), block.columns)
                if block.merge_rules:
                    self.merge_rules.add(table)
        self.existing: dict[str, Columns] = {}
        self.discards: list[Row] = []
        self.loaded = Loaded({}, 0, {})

    async def table(self, warehouse: Warehouse, table: str) -> None:
        staged, stamps = self.staged[table], self.safe.stamps
        mode: Mode = "append" if self.append else "merge"
        key: tuple[str, ...] = ()
        if table in self.merge_rules:
            mode, key = "new", tuple(sorted(name for name in staged if name not in stamps))
        elif table == self.safe(USERS):
            mode = "users"
        change = schema.change(self.existing.get(table), staged)
        types = await warehouse.prepare(self.namespace, table, change, mode)
        wanted = types if mode == "users" else staged
        columns = sorted(name for name in wanted if name not in stamps)
        values = _Values(table, columns, types, self.safe, self.discards, self.limits)
        kinds = [types[name] for name in columns]
        stamped = tuple(name for name in stamps if name in types)  # merge rules have none
        load = Load(self.namespace, table, columns, kinds, mode, key, stamped, self.now,
                    self.batch)  # fmt: skip
        await warehouse.load(load, values.of(self.files))
        self.loaded.tables[table] = values.rows
        self.loaded.schema[table] = types

    async def load_discards(self, warehouse: Warehouse) -> None:
        safe, table = self.safe, self.safe(DISCARDS)
        columns = {safe(name): kind for name, kind in _DISCARD_COLUMNS.items()}
        columns.update((name, "datetime") for name in safe.stamps)
        change = schema.change(self.existing.get(table), columns)
        types = await warehouse.prepare(self.namespace, table, change, "new")
        order = sorted(name for name in columns if name not in safe.stamps)
        rows = ([row.data.get(name) for name in order] for row in self.discards)
        key = tuple(safe(name) for name in _DISCARD_KEY)
        kinds = [types[name] for name in order]
        load = Load(self.namespace, table, order, kinds, "new", key, safe.stamps, self.now,
                    self.batch)  # fmt: skip
        await warehouse.load(load, rows)
        self.loaded.discards = len(self.discards)
        self.loaded.tables[table] = len(self.discards)
        self.loaded.schema[table] = types


class _Values:
    """A table's staged rows as the warehouse takes them: one value per column, in order,
    each of its column's type (or None). A plain row whose shape has the types of the table's
    columns is only reordered (`itemgetter`, no look at its values but those of a type the
    warehouse limits); the others are converted value by value, and what a column cannot take
    is discarded."""

    def __init__(self, table: str, columns: list[str], types: Columns, safe: "_Names",
                 discards: list[Row], limits: Limits) -> None:  # fmt: skip
        self.table, self.columns, self.types = table, columns, types
        self.safe, self.discards, self.limits = safe, discards, limits
        self._checks = [(index, limits[types[name]]) for index, name in enumerate(columns)
                        if types[name] in limits]  # fmt: skip
        self.rows = 0
        self._getters: dict[tuple[tuple[str, str], ...], Callable[[list[Any]], Any] | None] = {}

    def of(self, files: Sequence[Staged]) -> Iterator[Sequence[Any]]:
        for file in files:
            block = file.summary.tables.get(self.table)
            if block is None:
                continue
            getters = [self._getter(shape) for shape in block.shapes]
            arrays = staging.plain(file, self.table)
            self.rows += len(arrays)
            checks = self._checks
            for array in arrays:
                getter = getters[array[0]]
                if getter is not None:
                    values = getter(array)
                    if not checks or all(values[i] is None or accepts(values[i])
                                         for i, accepts in checks):  # fmt: skip
                        yield values
                        continue
                yield self._careful(staging.row(block.shapes[array[0]], array))
            found = staging.careful(file, self.table)
            self.rows += len(found)
            for row in found:
                yield self._careful(row)

    def _getter(self, shape: dict[str, str]) -> Callable[[list[Any]], Any] | None:
        """What puts a plain row of this shape in the table's column order (the end of each
        array is a null, for the columns it does not have); None when a value of it has
        another type than its column."""
        key = tuple(shape.items())
        if key not in self._getters:
            conforms = all(self.types.get(name) == kind for name, kind in key
                           if name not in self.safe.stamps)  # fmt: skip
            place = {name: index for index, name in enumerate(shape, start=1)}
            positions = [place.get(name, -1) for name in self.columns]
            getter = itemgetter(*positions) if len(positions) > 1 else _single(positions[0])
            self._getters[key] = getter if conforms else None
        return self._getters[key]

    def _careful(self, row: Row) -> list[Any]:
        data, inferred = row.data, row.columns
        values: list[Any] = []
        for name in self.columns:
            value = data.get(name)
            if value is None:
                values.append(None)
                continue
            kind = self.types[name]
            try:
                converted = _value(value, kind, inferred.get(name, kind))
                accepts = self.limits.get(kind)
                if accepts is not None and not accepts(converted):
                    raise conversions.OutOfRange(value, kind)
                values.append(converted)
            except conversions.Refused as exc:
                self.discards.append(_discard(self.safe, self.table, row, name, value, str(exc)))
                values.append(None)
        return values


def _single(position: int) -> Callable[[list[Any]], tuple[Any]]:
    return lambda array: (array[position],)


def _value(value: Any, kind: str, given: str) -> Any:
    """One value for a column of type `kind`, the row having inferred `given`. Text loses any
    NUL character (no warehouse's text takes one), JSON text its escape."""
    if given == "int" and isinstance(value, float):
        value = int(value)  # as RudderStack's loader cuts it
    if kind != given:
        value = conversions.convert(value, kind, given)
    if kind == "int":
        if not -INT64 <= value < INT64:
            raise conversions.OutOfRange(value, kind)
        return value
    if isinstance(value, list | dict):
        value = javascript.stringify(value)
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if kind == "json":
            value = _NUL_ESCAPE.sub(r"\1", value)
    return value


def _discard(safe: "_Names", table: str, row: Row, column: str, value: Any, reason: str) -> Row:
    data = {
        safe("table_name"): table,
        safe("row_id"): conversions.text(row.data.get(safe("id"))),
        safe("column_name"): column,
        safe("column_value"): conversions.text(value),
        safe("received_at"): row.data.get(safe("received_at")),
        safe("reason"): reason,
    }
    return Row(DISCARDS, {}, data)


class _Names:
    """RudderStack's own names as this warehouse spells them."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        # The columns that hold the load's time: BigQuery's rows have `loaded_at` too.
        self.stamps = tuple(self(name) for name in STAMPS.get(provider, STAMPS[""]))

    def __call__(self, name: str) -> str:
        return names.safe(name, self._provider)


def _batch(files: Sequence[Staged]) -> str:
    """The staged files as one name, which another file, or a file written again, changes."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda file: file.key):
        found = file.rows_path.stat()
        digest.update(f"{file.key}\n{found.st_size}\n{found.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
