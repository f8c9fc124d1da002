"""One load: a source's staged files into its schema in the warehouse.

Per table: the columns the staged rows need are added (a new table is created), then its rows
are loaded — each value converted to its column's type where the column cannot take it as it
is (`conversions.py`), or else left out of the row and written to `rudder_discards` with the
reason. Every table is loaded in one warehouse transaction and merged on `id`, so a load that
stops half way (a crash, a warehouse going away) is simply done again: the tables it had
loaded get the same rows once more, replacing themselves.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.warehouses import conversions, javascript, names, schema, staging
from engine.warehouses.names import Provider
from engine.warehouses.rows import Row
from engine.warehouses.schema import Columns
from engine.warehouses.staging import Staged
from engine.warehouses.warehouse import Load, Mode, Warehouse

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


@dataclass
class Loaded:
    tables: dict[str, int]  # table → rows loaded
    discards: int
    schema: dict[str, Columns]  # the tables the load touched, as they are now


async def load(
    warehouse: Warehouse,
    provider: Provider,
    namespace: str,
    files: Sequence[Staged],
    *,
    append: bool = False,
) -> Loaded:
    """Load `files` (staged for one source) into `namespace`."""
    now = _iso(datetime.now(UTC))
    staged: dict[str, Columns] = {}
    merge_rules: set[str] = set()
    for file in files:
        for table, block in file.summary.tables.items():
            schema.stage(staged.setdefault(table, {}), block.columns)
            if block.merge_rules:
                merge_rules.add(table)
    existing = await warehouse.tables(namespace)
    loaded = Loaded({}, 0, {})
    discards: list[Row] = []
    safe = _Names(provider)
    for table in sorted(staged):
        mode: Mode = "merge"
        key: tuple[str, ...] = ()
        if table in merge_rules:
            mode, key = "new", tuple(sorted(name for name in staged[table] if name != safe.uuid_ts))
        elif table == safe(USERS):
            mode = "users"
        elif append:
            mode = "append"
        change = schema.change(existing.get(table), staged[table])
        await warehouse.prepare(namespace, table, change, keyed=mode != "new")
        columns = sorted(change.columns if mode == "users" else staged[table])
        counter = _Counter()
        values = _values(files, table, columns, change.columns, safe, now, discards, counter)
        kinds = [change.columns[name] for name in columns]
        await warehouse.load(Load(namespace, table, columns, kinds, mode, key), values)
        loaded.tables[table] = counter.rows
        loaded.schema[table] = change.columns
    if discards:
        await _load_discards(warehouse, namespace, safe, existing, discards, now, loaded)
    return loaded


async def _load_discards(
    warehouse: Warehouse,
    namespace: str,
    safe: "_Names",
    existing: dict[str, Columns],
    discards: list[Row],
    now: str,
    loaded: Loaded,
) -> None:
    table = safe(DISCARDS)
    columns = {safe(name): kind for name, kind in _DISCARD_COLUMNS.items()}
    change = schema.change(existing.get(table), columns)
    await warehouse.prepare(namespace, table, change, keyed=False)
    order = sorted(columns)
    rows = ([row.data.get(name, now if name == safe.uuid_ts else None) for name in order]
            for row in discards)  # fmt: skip
    key = tuple(safe(name) for name in _DISCARD_KEY)
    kinds = [change.columns[name] for name in order]
    await warehouse.load(Load(namespace, table, order, kinds, "new", key), rows)
    loaded.discards = len(discards)
    loaded.tables[table] = len(discards)
    loaded.schema[table] = change.columns


class _Counter:
    rows = 0


def _values(
    files: Sequence[Staged],
    table: str,
    columns: list[str],
    types: Columns,
    safe: "_Names",
    now: str,
    discards: list[Row],
    counter: _Counter,
) -> Iterator[list[Any]]:
    """A table's staged rows as the warehouse takes them: one value per column, in order,
    each of its column's type (or None)."""
    for file in files:
        for row in staging.rows(file, table):
            data, inferred = row.data, row.columns
            values: list[Any] = []
            for name in columns:
                value = data.get(name)
                if value is None:
                    values.append(now if name == safe.uuid_ts else None)
                    continue
                kind = types[name]
                given = inferred.get(name, kind)
                try:
                    values.append(_value(value, kind, given))
                except conversions.Refused as exc:
                    discards.append(_discard(safe, table, row, name, value, str(exc)))
                    values.append(None)
            counter.rows += 1
            yield values


def _value(value: Any, kind: str, given: str) -> Any:
    """One value for a column of type `kind`, the row having inferred `given`."""
    if given == "int" and isinstance(value, float):
        value = int(value)  # an integral float (1.0), as RudderStack's loader cuts it
    if kind != given:
        value = conversions.convert(value, kind, given)
    if kind == "int":
        if not -INT64 <= value < INT64:
            raise conversions.OutOfRange(value, kind)
        return value
    if isinstance(value, list | dict):
        return javascript.stringify(value)
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
        self.uuid_ts = self("uuid_ts")

    def __call__(self, name: str) -> str:
        return names.safe(name, self._provider)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
