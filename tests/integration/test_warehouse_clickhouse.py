"""Loads into a real ClickHouse (Debian's clickhouse-server, over its HTTP interface): tables
made and widened as needed, every event once however often it is staged or loaded, the users
merge, discarded values, a refused connection said plainly, and the real Python SDK's events
end to end (gateway → worker → ClickHouse) on `sluice warehouse sync`."""

import json
from pathlib import Path
from typing import Any

import pytest

from engine.warehouses import loader
from engine.warehouses.warehouse import WarehouseError
from tests.clickhouse import ClickHouse
from tests.delivery import connect_destinations, sluice
from tests.integration.test_warehouse_loads import identify, load_into, loaded_again, track
from tests.integration.test_warehouse_loads import stage as stage_for
from tests.integration.test_warehouse_pipeline import STAGE_FAST, send_and_sync
from tests.servers import GatewayProcess


def stage(root: Path, key: str, *events: dict[str, Any]) -> None:
    stage_for(root, key, *events, provider="CLICKHOUSE")


def load(server: ClickHouse, root: Path, **more: Any) -> loader.Loaded:
    return load_into("clickhouse", server.settings(**more), server.database, root)


def test_tables_are_made_and_every_event_is_loaded_once(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    first = track("m1", "2024-01-01T00:00:00.250Z", total=10, coupon="A\tB\\C\nD", paid=True)
    stage(tmp_path, "1", first, track("m2", "2024-01-01T00:00:01Z", total=2.5, share=0.5))
    stage(tmp_path, "2", first)  # the same event staged again (a router's crash and retry)
    loaded = load(clickhouse, tmp_path)
    assert loaded.tables == {"tracks": 3, "order_completed": 3}
    db = clickhouse.database
    assert clickhouse.query(f"SELECT id FROM {db}.tracks ORDER BY id") == [["m1"], ["m2"]]
    types = dict(clickhouse.query(
        f"SELECT name, type FROM system.columns WHERE database = '{db}' "
        "AND table = 'order_completed'"
    ))  # fmt: skip
    assert types["total"] == "Nullable(Int64)"  # the first type seen: 10 is an int
    assert types["share"] == "Nullable(Float64)" and types["paid"] == "Nullable(UInt8)"
    assert types["id"] == "String" and types["received_at"] == "DateTime(\\'UTC\\')"
    found = clickhouse.query(
        f"SELECT id, total, share, paid, coupon, toString(received_at), uuid_ts IS NOT NULL "
        f"FROM {db}.order_completed ORDER BY id"
    )
    assert found == [
        ["m1", "10", "\\N", "1", "A\\tB\\\\C\\nD", "2024-01-01 00:00:00", "1"],
        ["m2", "2", "0.5", "\\N", "\\N", "2024-01-01 00:00:01", "1"],  # 2.5 cut to an integer
    ]
    engine = clickhouse.query(f"SELECT engine FROM system.tables WHERE database = '{db}' "
                              "AND name = 'tracks'")  # fmt: skip
    assert engine == [["ReplacingMergeTree"]]

    load(clickhouse, tmp_path)  # the same load again (a crash before it was marked done)
    assert clickhouse.query(f"SELECT count() FROM {db}.order_completed") == [["2"]]
    assert clickhouse.query(f"SELECT count() FROM {db}.tracks") == [["2"]]


def test_a_column_never_changes_type_and_new_ones_are_added(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=10))
    load(clickhouse, tmp_path)
    loaded_again(tmp_path)
    before_1970 = track("m4", "2024-01-02T00:00:00Z", total=4)
    before_1970["originalTimestamp"] = "1969-12-31T23:59:59Z"
    stage(tmp_path, "2", track("m3", "2024-01-02T00:00:00Z", total="ten", note="new"),
          before_1970)  # fmt: skip
    loaded = load(clickhouse, tmp_path)
    assert loaded.schema["order_completed"]["total"] == "int"
    assert loaded.schema["order_completed"]["note"] == "string"
    db = clickhouse.database
    assert clickhouse.query(f"SELECT id, total, note FROM {db}.order_completed ORDER BY id") == [
        ["m1", "10", "\\N"], ["m3", "\\N", "new"], ["m4", "4", "\\N"]
    ]  # fmt: skip
    discards = (f"SELECT table_name, row_id, column_name, column_value, reason "
                f"FROM {db}.rudder_discards ORDER BY table_name, row_id, column_name")  # fmt: skip
    # A time before 1970 cannot be a ClickHouse DateTime: discarded, not wrapped around.
    too_early = [
        "1969-12-31T23:59:59.000Z",
        "1969-12-31T23:59:59.000Z is out of range for a column of type datetime",
    ]
    expected = [
        ["order_completed", "m3", "total", "ten",
         "incompatible schema conversion from int to string"],
        ["order_completed", "m4", "original_timestamp", *too_early],
        ["tracks", "m4", "original_timestamp", *too_early],
    ]  # fmt: skip
    assert clickhouse.query(discards) == expected
    load(clickhouse, tmp_path)  # again: the discards are not doubled either
    assert clickhouse.query(discards) == expected


def test_users_keep_the_latest_value_of_each_column(clickhouse: ClickHouse, tmp_path: Path) -> None:
    stage(tmp_path, "1", identify("i1", "2024-01-01T00:00:00Z", plan="free", city="Oslo"))
    load(clickhouse, tmp_path)
    loaded_again(tmp_path)
    stage(tmp_path, "2", identify("i3", "2024-01-03T00:00:00Z", plan="pro"),
          identify("i2", "2024-01-02T00:00:00Z", plan="team", email="a@b.c"))  # fmt: skip
    load(clickhouse, tmp_path)
    db = clickhouse.database
    users = clickhouse.query(
        f"SELECT id, plan, city, email, toString(received_at) FROM {db}.users FINAL"
    )
    assert users == [["u1", "pro", "Oslo", "a@b.c", "2024-01-03 00:00:00"]]
    assert clickhouse.query(f"SELECT count() FROM {db}.identifies") == [["3"]]


def test_appending_loads_rows_as_they_are(clickhouse: ClickHouse, tmp_path: Path) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=1))
    load(clickhouse, tmp_path, preferAppend=True)
    db = clickhouse.database
    found = clickhouse.query(f"SELECT id, total, uuid_ts IS NOT NULL FROM {db}.order_completed")
    assert found == [["m1", "1", "1"]]


def test_a_refused_connection_says_why_without_the_password(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"))
    with pytest.raises(WarehouseError, match="Wrong password for user sluice") as refused:
        load(clickhouse, tmp_path, password="not-the-password-x9")
    assert "not-the-password-x9" not in str(refused.value)
    with pytest.raises(WarehouseError, match="native protocol; Sluice uses its HTTP") as native:
        load(clickhouse, tmp_path, port="9000")
    assert "cannot reach ClickHouse at 127.0.0.1:9000" in str(native.value)


def test_sdk_events_reach_the_clickhouse_tables(
    workspace_config: str, clickhouse: ClickHouse, gateway: GatewayProcess, tmp_path: Path
) -> None:
    config = clickhouse.settings(syncFrequency="1440")
    connect_destinations(workspace_config, ("ch", "clickhouse", config), delivery=STAGE_FAST)
    shown = send_and_sync(workspace_config, gateway, tmp_path, "ch")
    db = clickhouse.database
    assert "loaded" in shown and f"into {db}" in shown, shown
    tables = {row[0] for row in clickhouse.query(
        f"SELECT name FROM system.tables WHERE database = '{db}'")}  # fmt: skip
    assert {"tracks", "order_completed", "anonymous_visit", "identifies", "users", "pages",
            "screens", "groups", "aliases"} <= tables  # fmt: skip
    order = clickhouse.query(f"SELECT id, user_id, order_id, total, context_library_name, "
                             f"context_destination_type FROM {db}.order_completed")  # fmt: skip
    assert order == [["wh-track", "user-1", "o-1", "42.5", "analytics-python", "CLICKHOUSE"]]
    users = clickhouse.query(f"SELECT id, email, plan FROM {db}.users FINAL")
    assert users == [["user-1", "ada@example.com", "pro"]]
    [status] = json.loads(sluice(workspace_config, "warehouse", "status", "--json"))
    assert status["loads"][0]["status"] == "loaded"
    assert status["loads"][0]["tables"]["tracks"] == 2
    assert {t["table_name"] for t in status["schema"]} == tables


def test_an_id_of_another_type_later_is_loaded_not_stuck(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    # A numeric userId first would make `users.id` an integer; a text one later could then
    # not be loaded into the sort key, and every later load of the source would fail.
    numeric = identify("i1", "2024-01-01T00:00:00Z", plan="free")
    numeric["userId"] = 123
    stage(tmp_path, "1", numeric)
    load(clickhouse, tmp_path)
    loaded_again(tmp_path)
    stage(tmp_path, "2", identify("i2", "2024-01-02T00:00:00Z", plan="pro"))  # userId "u1"
    loaded = load(clickhouse, tmp_path)
    assert loaded.schema["users"]["id"] == "string"
    assert loaded.discards == 1  # identifies.user_id (an integer column) cannot take "u1"
    db = clickhouse.database
    users = clickhouse.query(f"SELECT id, plan FROM {db}.users FINAL ORDER BY id")
    assert users == [["123", "free"], ["u1", "pro"]]
