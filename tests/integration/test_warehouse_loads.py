"""Loads into a real PostgreSQL warehouse: staged rows in, tables made and widened as needed,
every event once however often it is staged or loaded, the users merge, discarded values."""

import asyncio
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.catalog import TYPES
from engine.pipeline.topology import Target
from engine.specs import DestinationSpec
from engine.warehouses import loader, rows, staging
from engine.warehouses.names import Provider
from engine.warehouses.settings import PostgresSettings
from engine.warehouses.warehouse import WarehouseError
from tests.conftest import warehouse_settings

DESTINATION = uuid.UUID(int=7)
SOURCE = uuid.UUID(int=8)


def settings_for(url: str, **more: Any) -> PostgresSettings:
    return msgspec.convert(warehouse_settings(url, **more), PostgresSettings)


def stage(root: Path, key: str, *events: dict[str, Any], provider: Provider = "POSTGRES",
          options: rows.Options | None = None) -> None:  # fmt: skip
    lines = []
    for event in events:
        found = rows.rows(codec.decode(codec.encode(event)), provider, options or rows.Options())
        lines.append(msgspec.json.encode([msgspec.to_builtins(r) for r in found]))
    staging.write(root, DESTINATION, f"{SOURCE}/{key}", b"\n".join(lines) + b"\n")


def load_into(destination_type: str, config: dict[str, Any], namespace: str,
              root: Path) -> loader.Loaded:  # fmt: skip
    """What is staged in `root`, loaded as the load stage loads it into a destination of the
    type with `config`: two tables at a time, on two sessions."""
    plugin = TYPES[destination_type]
    kind, settings = plugin.warehouse, plugin.parse_settings(config)
    assert kind is not None

    async def go() -> loader.Loaded:
        files = staging.pending(root, DESTINATION)
        async with kind.open(settings) as first, kind.open(settings) as second:
            return await loader.load([first, second], kind.provider, namespace, files,
                                     append=settings.preferAppend, limits=kind.limits)  # fmt: skip

    return asyncio.run(go())


def load(url: str, root: Path, **more: Any) -> loader.Loaded:
    return load_into("postgres", warehouse_settings(url, **more), "web", root)


def loaded_again(root: Path) -> None:
    """The staged files are done with (as after a load that succeeded)."""
    for found in staging.pending(root, DESTINATION):
        staging.remove(root, DESTINATION, found.key)


def query(url: str, text: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(text).fetchall()


def track(message_id: str, received: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "messageId": message_id,
            "userId": "u1", "receivedAt": received, "properties": properties}  # fmt: skip


def test_tables_are_made_and_every_event_is_loaded_once(warehouse_url: str, tmp_path: Path) -> None:
    first = track("m1", "2024-01-01T00:00:00Z", total=10, coupon="A")
    stage(tmp_path, "1", first, track("m2", "2024-01-01T00:00:01Z", total=2.5))
    stage(tmp_path, "2", first)  # the same event staged again (a router's crash and retry)
    loaded = load(warehouse_url, tmp_path)
    assert loaded.tables == {"tracks": 3, "order_completed": 3}
    assert query(warehouse_url, "SELECT id FROM web.tracks ORDER BY id") == [("m1",), ("m2",)]
    types = dict(query(warehouse_url, "SELECT column_name, data_type FROM information_schema"
                       ".columns WHERE table_name = 'order_completed'"))  # fmt: skip
    assert types["total"] == "bigint"  # the first type seen: 10 is an int
    assert types["coupon"] == "text" and types["received_at"] == "timestamp with time zone"
    # A float in an int column is cut to an integer, as RudderStack's loader does.
    totals = query(warehouse_url, "SELECT id, total FROM web.order_completed ORDER BY id")
    assert totals == [("m1", 10), ("m2", 2)]

    load(warehouse_url, tmp_path)  # the same load again (a crash before it was marked done)
    assert query(warehouse_url, "SELECT count(*) FROM web.order_completed") == [(2,)]


def test_a_column_never_changes_type_and_new_ones_are_added(
    warehouse_url: str, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=10))
    load(warehouse_url, tmp_path)
    for found in staging.pending(tmp_path, DESTINATION):
        staging.remove(tmp_path, DESTINATION, found.key)
    stage(tmp_path, "2", track("m3", "2024-01-02T00:00:00Z", total="ten", note="new"))
    loaded = load(warehouse_url, tmp_path)
    assert loaded.schema["order_completed"]["total"] == "int"
    assert loaded.schema["order_completed"]["note"] == "string"
    assert query(warehouse_url, "SELECT id, total, note FROM web.order_completed ORDER BY id") == [
        ("m1", 10, None), ("m3", None, "new")
    ]  # fmt: skip
    assert loaded.discards == 1
    discards = (
        "SELECT table_name, row_id, column_name, column_value, reason FROM web.rudder_discards"
    )
    expected = [("order_completed", "m3", "total", "ten",
                 "incompatible schema conversion from int to string")]  # fmt: skip
    assert query(warehouse_url, discards) == expected
    load(warehouse_url, tmp_path)  # again: the discard is not doubled either
    assert query(warehouse_url, discards) == expected


def identify(message_id: str, received: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "messageId": message_id, "userId": "u1",
            "receivedAt": received, "traits": traits}  # fmt: skip


def test_users_keep_the_latest_value_of_each_column(warehouse_url: str, tmp_path: Path) -> None:
    stage(tmp_path, "1", identify("i1", "2024-01-01T00:00:00Z", plan="free", city="Oslo"))
    load(warehouse_url, tmp_path)
    for found in staging.pending(tmp_path, DESTINATION):
        staging.remove(tmp_path, DESTINATION, found.key)
    stage(tmp_path, "2", identify("i3", "2024-01-03T00:00:00Z", plan="pro"),
          identify("i2", "2024-01-02T00:00:00Z", plan="team", email="a@b.c"))  # fmt: skip
    load(warehouse_url, tmp_path)
    users = query(warehouse_url, "SELECT id, plan, city, email, received_at FROM web.users")
    assert [row[:4] for row in users] == [("u1", "pro", "Oslo", "a@b.c")]
    assert users[0][4].isoformat() == "2024-01-03T00:00:00+00:00"
    assert query(warehouse_url, "SELECT count(*) FROM web.identifies") == [(3,)]


def test_tables_of_the_loads_temporary_names_are_not_touched(
    warehouse_url: str, tmp_path: Path
) -> None:
    # The load's temporary tables are dropped by name: a table of the same name on the search
    # path (here in `public`) must not be taken for them.
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("CREATE TABLE public.sluice_merged (n int)")
        conn.execute("CREATE TABLE public.sluice_staging (n int)")
    stage(
        tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"), identify("i1", "2024-01-01T00:00:00Z")
    )
    load(warehouse_url, tmp_path)
    found = query(warehouse_url, "SELECT table_name FROM information_schema.tables "
                  "WHERE table_schema = 'public' ORDER BY 1")  # fmt: skip
    assert found == [("sluice_merged",), ("sluice_staging",)]


def test_text_the_warehouse_cannot_hold_is_cleaned(warehouse_url: str, tmp_path: Path) -> None:
    event = track("m1", "2024-01-01T00:00:00Z", note="a\x00b", blob={"k": "x\x00y"})
    event["integrations"] = {"POSTGRES": {"options": {"jsonPaths": ["blob"]}}}
    stage(tmp_path, "1", event)
    load(warehouse_url, tmp_path)
    found = query(warehouse_url, "SELECT note, blob FROM web.order_completed")
    assert found == [("ab", {"k": "xy"})]


def test_a_refused_connection_says_why_without_the_password(
    warehouse_url: str, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"))
    with pytest.raises(WarehouseError, match="cannot connect to") as refused:
        load(warehouse_url, tmp_path, password="not-the-password-x9")
    assert "not-the-password-x9" not in str(refused.value)


def test_a_test_event_tries_the_connection_and_loads_nothing(warehouse_url: str) -> None:
    good_settings = warehouse_settings(warehouse_url, namespace="web")
    bad_settings = warehouse_settings(warehouse_url, password="wrong-password-7")
    good = Target.of(DestinationSpec("wh", "postgres", good_settings))
    bad = Target.of(DestinationSpec("wh", "postgres", bad_settings))
    event = {"type": "track", "event": "Tried", "messageId": "t1", "userId": "u"}
    [tried] = asyncio.run(preview.send(good, event))
    [refused] = asyncio.run(preview.send(bad, event))
    assert tried.verdict == "delivered" and "nothing was loaded" in tried.answer
    assert tried.request.body[1]["table"] == "tried"  # the rows it would become are shown
    assert refused.verdict == "retry" and "cannot connect to" in refused.answer
    assert "wrong-password-7" not in refused.answer
    assert query(warehouse_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'web'") == [(0,)]
