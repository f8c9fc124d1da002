"""Staged rows: a warehouse's events, already rows, on this host's data dir until a load takes
them (the contract's staging files, `shared/docs/warehouse.md` §12).

The batch router hands over a source's events a file at a time, one line per event (the event's
rows as JSON). A staged file keeps them grouped by table, one row a line, with a summary beside
it: each table's byte range, row count and columns (name → type, the first type seen winning,
`text` over any). A load reads the summaries to know every table's schema before it reads a
row, then streams each table's ranges. Layout:

    <root>/<destination id>/<source id>/<key>.rows     the rows
    <root>/<destination id>/<source id>/<key>.json     the summary, written last

A file counts once its summary is there. The same key is written again after a crash (the
router's first job names it): both files are replaced, never doubled.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import msgspec

from engine.warehouses import schema
from engine.warehouses.rows import Row

ROWS, SUMMARY = ".rows", ".json"


class Block(msgspec.Struct):
    """One table's rows in a staged file."""

    offset: int
    length: int
    rows: int
    columns: dict[str, str]
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
_summary = msgspec.json.Decoder(Summary)
_encode = msgspec.json.Encoder().encode


def directory(root: Path, destination_id: UUID) -> Path:
    return root / str(destination_id)


def write(root: Path, destination_id: UUID, key: str, lines: bytes) -> Summary:
    """Stage one batch: `lines` holds one event a line, each its list of rows."""
    tables: dict[str, list[bytes]] = {}
    columns: dict[str, dict[str, str]] = {}
    merge_rules: set[str] = set()
    events = 0
    oldest: str | None = None
    for line in lines.splitlines():
        if not line.strip():
            continue
        events += 1
        for row in _rows.decode(line):
            tables.setdefault(row.table, []).append(_encode(row))
            schema.stage(columns.setdefault(row.table, {}), row.columns)
            if row.is_merge_rule:
                merge_rules.add(row.table)
            received = _received_at(row)
            if received is not None and (oldest is None or received < oldest):
                oldest = received
    blocks, body, offset = {}, bytearray(), 0
    for table, encoded in tables.items():
        chunk = b"\n".join(encoded) + b"\n"
        blocks[table] = Block(offset, len(chunk), len(encoded), columns[table],
                              table in merge_rules)  # fmt: skip
        body += chunk
        offset += len(chunk)
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


def rows(staged: Staged, table: str) -> list[Row]:
    """One table's rows in a staged file, in the order they were staged (a file holds a
    router's batch, tens of megabytes at most)."""
    block = staged.summary.tables.get(table)
    if block is None:
        return []
    with staged.rows_path.open("rb") as source:
        source.seek(block.offset)
        data = source.read(block.length)
    if len(data) != block.length:
        raise OSError(f"{staged.rows_path} ends before its {table} rows do")
    return _rows.decode(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")


def remove(root: Path, destination_id: UUID, key: str) -> None:
    """A loaded file: both parts gone (the summary first, so a half-removed file is no file)."""
    path = directory(root, destination_id) / key
    for suffix in (SUMMARY, ROWS):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
