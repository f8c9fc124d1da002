"""Staged rows: a warehouse's events, already rows, on this host's data dir until a load takes
them (the contract's staging files, `shared/docs/warehouse.md` §12).

The batch router hands over a source's events a file at a time, one line per event (the event's
rows as JSON). A staged file keeps them grouped by table, one row a line, with a summary beside
it: each table's byte range, row counts, shapes and columns (see `Block`). A load reads the
summaries to know every table's schema before it reads a row, then each table's ranges; most
rows it only has to put in its column order, which the shapes let it do without looking at
their values. Layout:

    <root>/<destination id>/<source id>/<key>.rows     the rows
    <root>/<destination id>/<source id>/<key>.json     the summary, written last

A file counts once its summary is there. The same key is written again after a crash (the
router's first job names it): both files are replaced, never doubled.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from engine.warehouses import schema
from engine.warehouses.rows import Row

ROWS, SUMMARY = ".rows", ".json"
INT64 = 2**63


class Block(msgspec.Struct):
    """One table's rows in a staged file. The plain ones come first, each an array: the index
    of its shape (its columns, name → type, in the order of its values), its values, then a
    null. Then the careful ones, whole: those with a value that is an array or an object, text
    holding a NUL character, or an integer beyond 64 bits (a load looks at each of their
    values; a plain row it only reorders)."""

    offset: int
    plain_length: int
    length: int
    plain: int
    careful: int
    shapes: list[dict[str, str]]
    columns: dict[str, str]  # every row's columns: the first type seen winning, text over any
    merge_rules: bool = False


class Summary(msgspec.Struct):
    events: int
    oldest_event_at: str | None  # the smallest `received_at` of its rows (ISO, UTC)
    tables: dict[str, Block]


@dataclass(frozen=True)
class Staged:
    """A staged file, by its key (`<source id>/<name>`)."""

    key: str
    rows_path: Path
    summary: Summary

    @property
    def source_id(self) -> UUID:
        return UUID(self.key.split("/", 1)[0])


_rows = msgspec.json.Decoder(list[Row])
_arrays = msgspec.json.Decoder(list[list[Any]])
_summary = msgspec.json.Decoder(Summary)
_encode = msgspec.json.Encoder().encode


@dataclass
class _Table:
    """A table's rows as they are staged."""

    shapes: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)
    plain: list[bytes] = field(default_factory=list)
    careful: list[bytes] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    merge_rules: bool = False

    def add(self, row: Row) -> None:
        schema.stage(self.columns, row.columns)
        self.merge_rules = self.merge_rules or row.is_merge_rule
        if _careful(row):
            self.careful.append(_encode(row))
            return
        shape = self.shapes.setdefault(tuple(row.columns.items()), len(self.shapes))
        data = row.data
        self.plain.append(_encode([shape, *map(data.get, row.columns), None]))

    def block(self, offset: int) -> tuple[Block, bytes]:
        plain = b"".join(line + b"\n" for line in self.plain)
        careful = b"".join(line + b"\n" for line in self.careful)
        shapes = [dict(shape) for shape in self.shapes]
        block = Block(offset, len(plain), len(plain) + len(careful), len(self.plain),
                      len(self.careful), shapes, self.columns, self.merge_rules)  # fmt: skip
        return block, plain + careful


def _careful(row: Row) -> bool:
    for name, value in row.data.items():
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, list | dict):
            return True
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -INT64 <= value < INT64:
                return True
        elif isinstance(value, float) and row.columns.get(name) == "int":
            return True  # (a whole number too large to be written without an exponent)
    return False


def directory(root: Path, destination_id: UUID) -> Path:
    return root / str(destination_id)


def write(root: Path, destination_id: UUID, key: str, lines: bytes) -> Summary:
    """Stage one batch: `lines` holds one event a line, each its list of rows."""
    tables: dict[str, _Table] = {}
    events = 0
    oldest: str | None = None
    for line in lines.splitlines():
        if not line.strip():
            continue
        events += 1
        for row in _rows.decode(line):
            tables.setdefault(row.table, _Table()).add(row)
            received = _received_at(row)
            if received is not None and (oldest is None or received < oldest):
                oldest = received
    blocks, body = {}, bytearray()
    for table, staged in tables.items():
        blocks[table], chunk = staged.block(len(body))
        body += chunk
    summary = Summary(events, oldest, blocks)
    path = directory(root, destination_id) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path.with_name(path.name + ROWS), bytes(body))
    _replace(path.with_name(path.name + SUMMARY), _encode(summary))
    _sync_directory(path.parent)
    return summary


def _received_at(row: Row) -> str | None:
    value = row.data.get("received_at", row.data.get("RECEIVED_AT"))
    return value if isinstance(value, str) else None


def _replace(path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all, on disk before this returns."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def pending(root: Path, destination_id: UUID) -> list[Staged]:
    """This destination's staged files, oldest first within each source."""
    found = []
    base = directory(root, destination_id)
    for summary_path in sorted(base.glob(f"*/*{SUMMARY}")):
        if summary_path.name.endswith(".tmp"):
            continue
        name = summary_path.name.removesuffix(SUMMARY)
        rows_path = summary_path.with_name(name + ROWS)
        found.append(
            Staged(
                f"{summary_path.parent.name}/{name}",
                rows_path,
                _summary.decode(summary_path.read_bytes()),
            )
        )
    return found


def find(root: Path, destination_id: UUID, key: str) -> Staged | None:
    """A staged file by its key; None once it is gone (loaded and removed)."""
    path = directory(root, destination_id) / key
    summary_path, rows_path = path.with_name(path.name + SUMMARY), path.with_name(path.name + ROWS)
    if not summary_path.exists():
        return None
    return Staged(key, rows_path, _summary.decode(summary_path.read_bytes()))


def plain(staged: Staged, table: str) -> list[list[Any]]:
    """A table's plain rows in a staged file, as arrays (see `Block`)."""
    block = staged.summary.tables.get(table)
    if block is None or not block.plain:
        return []
    return _arrays.decode(_joined(_read(staged, table, block.offset, block.plain_length)))


def careful(staged: Staged, table: str) -> list[Row]:
    """A table's careful rows in a staged file."""
    block = staged.summary.tables.get(table)
    if block is None or not block.careful:
        return []
    offset = block.offset + block.plain_length
    return _rows.decode(_joined(_read(staged, table, offset, block.length - block.plain_length)))


def row(shape: dict[str, str], array: list[Any]) -> Row:
    """A plain row as a whole row again."""
    return Row("", shape, dict(zip(shape, array[1:-1], strict=True)))


def _read(staged: Staged, table: str, offset: int, length: int) -> bytes:
    """A byte range of a staged file (a router's batch: tens of megabytes at most)."""
    with staged.rows_path.open("rb") as source:
        source.seek(offset)
        data = source.read(length)
    if len(data) != length:
        raise OSError(f"{staged.rows_path} ends before its {table} rows do")
    return data


def _joined(lines: bytes) -> bytes:
    """JSON lines as one JSON array."""
    return b"[" + lines.rstrip(b"\n").replace(b"\n", b",") + b"]"


def remove(root: Path, destination_id: UUID, key: str) -> None:
    """A loaded file: both parts gone (the summary first, so a half-removed file is no file)."""
    path = directory(root, destination_id) / key
    for suffix in (SUMMARY, ROWS):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
