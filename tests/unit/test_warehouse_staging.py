"""Staged rows (a batch router's file, grouped by table with a summary) and a table's columns
across loads."""

from pathlib import Path
from uuid import UUID

import msgspec

from engine.warehouses import schema, staging
from engine.warehouses.rows import Row

DESTINATION = UUID(int=1)
SOURCE = UUID(int=2)


def line(*rows: Row) -> bytes:
    return msgspec.json.encode(list(rows))


def row(table: str, received: str, **data: object) -> Row:
    columns = {"uuid_ts": "datetime"} | {name: "string" for name in data}
    return Row(table, columns, {"received_at": received, **data})


def test_a_staged_file_groups_rows_by_table_and_says_what_it_holds(tmp_path: Path) -> None:
    day = "2024-01-02T00:00:00.000Z"
    body = b"\n".join([
        line(row("tracks", day, id="a"), row("e", day, id="a")),
        line(row("tracks", "2024-01-01T00:00:00.000Z", id="b")),
        line(Row("tracks", {"note": "text"}, {"id": "c", "note": "x" * 600})),
    ]) + b"\n"  # fmt: skip
    summary = staging.write(tmp_path, DESTINATION, f"{SOURCE}/k1", body)
    assert summary.events == 3
    assert summary.oldest_event_at == "2024-01-01T00:00:00.000Z"
    assert summary.tables["tracks"].rows == 3 and summary.tables["e"].rows == 1
    assert summary.tables["tracks"].columns["note"] == "text"
    [found] = staging.pending(tmp_path, DESTINATION)
    assert found.source_id == SOURCE and found.key == f"{SOURCE}/k1"
    assert [r.data["id"] for r in staging.rows(found, "tracks")] == ["a", "b", "c"]
    assert [r.table for r in staging.rows(found, "e")] == ["e"]
    assert staging.rows(found, "nothing") == []

    # The same key staged again (after a crash) replaces the file: it is never doubled.
    staging.write(tmp_path, DESTINATION, f"{SOURCE}/k1", line(row("tracks", "2024-01-03", id="d")))
    [again] = staging.pending(tmp_path, DESTINATION)
    assert [r.data["id"] for r in staging.rows(again, "tracks")] == ["d"]
    staging.remove(tmp_path, DESTINATION, f"{SOURCE}/k1")
    assert staging.pending(tmp_path, DESTINATION) == []
    assert staging.find(tmp_path, DESTINATION, f"{SOURCE}/k1") is None


def test_a_file_without_its_summary_is_not_staged_yet(tmp_path: Path) -> None:
    folder = tmp_path / str(DESTINATION) / str(SOURCE)
    folder.mkdir(parents=True)
    (folder / "half.rows").write_bytes(b"{}\n")  # written, then the process died
    assert staging.pending(tmp_path, DESTINATION) == []


def test_the_first_type_wins_and_text_widens() -> None:
    seen: schema.Columns = {}
    schema.stage(seen, {"a": "int", "b": "string"})
    schema.stage(seen, {"a": "string", "b": "text", "c": "float"})
    assert seen == {"a": "int", "b": "text", "c": "float"}

    change = schema.change({"a": "string", "b": "string"}, {"a": "int", "b": "text", "c": "int"})
    assert change.columns == {"a": "string", "b": "text", "c": "int"}
    assert change.added == {"c": "int"} and change.widened == ["b"] and not change.new_table
    made = schema.change(None, {"id": "string"})
    assert made.new_table and made.added == {"id": "string"}
