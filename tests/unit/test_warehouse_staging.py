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
    values = {"received_at": received, **data}
    return Row(table, {"uuid_ts": "datetime"} | dict.fromkeys(values, "string"), values)


def test_a_staged_file_groups_rows_by_table_and_says_what_it_holds(tmp_path: Path) -> None:
    day = "2024-01-02T00:00:00.000Z"
    body = b"\n".join([
        line(row("tracks", day, id="a"), row("e", day, id="a")),
        line(row("tracks", "2024-01-01T00:00:00.000Z", id="b")),
        line(Row("tracks", {"note": "text", "id": "string"}, {"note": "x" * 600, "id": "c"})),
    ]) + b"\n"  # fmt: skip
    summary = staging.write(tmp_path, DESTINATION, f"{SOURCE}/k1", body)
    assert summary.events == 3
    assert summary.oldest_event_at == "2024-01-01T00:00:00.000Z"
    tracks = summary.tables["tracks"]
    assert (tracks.plain, tracks.careful, summary.tables["e"].plain) == (3, 0, 1)
    assert tracks.columns["note"] == "text"
    # rows of the same columns share a shape; a plain row is its values in the shape's order
    assert tracks.shapes == [{"uuid_ts": "datetime", "received_at": "string", "id": "string"},
                             {"note": "text", "id": "string"}]  # fmt: skip
    [found] = staging.pending(tmp_path, DESTINATION)
    assert found.source_id == SOURCE and found.key == f"{SOURCE}/k1"
    arrays = staging.plain(found, "tracks")
    assert arrays == [[0, None, day, "a", None], [0, None, "2024-01-01T00:00:00.000Z", "b", None],
                      [1, "x" * 600, "c", None]]  # fmt: skip
    assert staging.row(tracks.shapes[1], arrays[2]).data == {"note": "x" * 600, "id": "c"}
    assert staging.plain(found, "nothing") == [] and staging.careful(found, "tracks") == []

    # The same key staged again (after a crash) replaces the file: it is never doubled.
    staging.write(tmp_path, DESTINATION, f"{SOURCE}/k1", line(row("tracks", "2024-01-03", id="d")))
    [again] = staging.pending(tmp_path, DESTINATION)
    assert [array[3] for array in staging.plain(again, "tracks")] == ["d"]
    staging.remove(tmp_path, DESTINATION, f"{SOURCE}/k1")
    assert staging.pending(tmp_path, DESTINATION) == []
    assert staging.find(tmp_path, DESTINATION, f"{SOURCE}/k1") is None


def test_rows_a_load_must_look_at_are_kept_whole(tmp_path: Path) -> None:
    odd = [Row("t", {"v": "string"}, {"v": [1, 2]}), Row("t", {"v": "string"}, {"v": "a\x00"}),
           Row("t", {"v": "int"}, {"v": 2**64}), Row("t", {"v": "int"}, {"v": 1e22}),
           Row("t", {"v": "int"}, {"v": 2**62})]  # fmt: skip
    summary = staging.write(tmp_path, DESTINATION, f"{SOURCE}/k", line(*odd))
    assert (summary.tables["t"].plain, summary.tables["t"].careful) == (1, 4)
    [found] = staging.pending(tmp_path, DESTINATION)
    assert [r.data["v"] for r in staging.careful(found, "t")] == [[1, 2], "a\x00", 2**64, 1e22]


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
