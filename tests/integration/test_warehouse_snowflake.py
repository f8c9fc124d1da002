"""Loads into Snowflake with Snowflake's own client, against fakesnow in its server mode
(tests/snowflake.py): files PUT to a temporary stage and copied in, MERGE on ID, the users
merge, discarded values, JSON paths as VARIANT, append mode, an account out of reach said
plainly, and the real Python SDK's events end to end on `sluice warehouse sync`."""

import json
from pathlib import Path
from typing import Any

import pytest

from engine.warehouses import loader
from engine.warehouses.warehouse import WarehouseError
from tests.delivery import connect_destinations, sluice
from tests.integration.test_warehouse_loads import identify, load_into, loaded_again, track
from tests.integration.test_warehouse_loads import stage as stage_for
from tests.integration.test_warehouse_pipeline import STAGE_FAST, send_and_sync
from tests.servers import GatewayProcess, free_port
from tests.snowflake import Snowflake


def stage(root: Path, key: str, *events: dict[str, Any]) -> None:
    stage_for(root, key, *events, provider="SNOWFLAKE")


def load(account: Snowflake, root: Path, **more: Any) -> loader.Loaded:
    return load_into("snowflake", account.settings(**more), "WEB", root)


def test_tables_are_made_and_every_event_is_loaded_once(
    snowflake_account: Snowflake, tmp_path: Path
) -> None:
    first = track("m1", "2024-01-01T00:00:00.250Z", total=10, coupon='say "hi", then\nbye',
                  paid=True)  # fmt: skip
    stage(tmp_path, "1", first, track("m2", "2024-01-01T00:00:01Z", total=2.5, share=0.5))
    stage(tmp_path, "2", first)  # the same event staged again (a router's crash and retry)
    loaded = load(snowflake_account, tmp_path)
    assert loaded.tables == {"TRACKS": 3, "ORDER_COMPLETED": 3}
    db = snowflake_account.database
    found = snowflake_account.query(
        f"SELECT ID, TOTAL, SHARE, PAID, COUPON, RECEIVED_AT, UUID_TS IS NOT NULL "
        f'FROM "{db}".WEB.ORDER_COMPLETED ORDER BY ID'
    )
    assert [row[:5] for row in found] == [
        ("m1", 10, None, True, 'say "hi", then\nbye'),
        ("m2", 2, 0.5, None, None),  # 2.5 cut to an integer, as RudderStack does
    ]
    assert found[0][5].isoformat() == "2024-01-01T00:00:00.250000+00:00" and found[0][6]
    types = dict(snowflake_account.query(
        f'SELECT column_name, data_type FROM "{db}".information_schema.columns '
        "WHERE table_name = 'ORDER_COMPLETED'"
    ))  # fmt: skip
    assert types["TOTAL"] == "NUMBER" and types["SHARE"] == "FLOAT"
    assert types["RECEIVED_AT"] == "TIMESTAMP_TZ" and types["COUPON"] == "TEXT"

    load(snowflake_account, tmp_path)  # the same load again (a crash before it was marked done)
    count = f'SELECT count(*) FROM "{db}".WEB.ORDER_COMPLETED'
    assert snowflake_account.query(count) == [(2,)]


def test_users_keep_the_latest_value_of_each_column(
    snowflake_account: Snowflake, tmp_path: Path
) -> None:
    stage(tmp_path, "1", identify("i1", "2024-01-01T00:00:00Z", plan="free", city="Oslo"))
    load(snowflake_account, tmp_path)
    loaded_again(tmp_path)
    stage(tmp_path, "2", identify("i3", "2024-01-03T00:00:00Z", plan="pro"),
          identify("i2", "2024-01-02T00:00:00Z", plan="team", email="a@b.c"))  # fmt: skip
    load(snowflake_account, tmp_path)
    db = snowflake_account.database
    users = snowflake_account.query(
        f'SELECT ID, PLAN, CITY, EMAIL, RECEIVED_AT FROM "{db}".WEB.USERS'
    )
    assert [row[:4] for row in users] == [("u1", "pro", "Oslo", "a@b.c")]
    assert users[0][4].isoformat() == "2024-01-03T00:00:00+00:00"
    assert snowflake_account.query(f'SELECT count(*) FROM "{db}".WEB.IDENTIFIES') == [(3,)]


def test_types_never_change_and_json_paths_are_variants(
    snowflake_account: Snowflake, tmp_path: Path
) -> None:
    event = track("m1", "2024-01-01T00:00:00Z", total=10, blob={"k": [1, "x"]})
    event["integrations"] = {"SNOWFLAKE": {"options": {"jsonPaths": ["blob"]}}}
    stage(tmp_path, "1", event)
    load(snowflake_account, tmp_path)
    loaded_again(tmp_path)
    stage(tmp_path, "2", track("m3", "2024-01-02T00:00:00Z", total="ten", note="new"))
    loaded = load(snowflake_account, tmp_path)
    assert loaded.discards == 1 and loaded.schema["ORDER_COMPLETED"]["BLOB"] == "json"
    db = snowflake_account.database
    rows = snowflake_account.query(
        f'SELECT ID, TOTAL, NOTE, BLOB:k[1] FROM "{db}".WEB.ORDER_COMPLETED ORDER BY ID'
    )
    assert rows == [("m1", 10, None, '"x"'), ("m3", None, "new", None)]
    discards = (f'SELECT TABLE_NAME, ROW_ID, COLUMN_NAME, COLUMN_VALUE, REASON '
                f'FROM "{db}".WEB.RUDDER_DISCARDS')  # fmt: skip
    expected = [("ORDER_COMPLETED", "m3", "TOTAL", "ten",
                 "incompatible schema conversion from int to string")]  # fmt: skip
    assert snowflake_account.query(discards) == expected
    load(snowflake_account, tmp_path)  # again: the discard is not doubled
    assert snowflake_account.query(discards) == expected


def test_appending_loads_rows_as_they_are(snowflake_account: Snowflake, tmp_path: Path) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=1))
    load(snowflake_account, tmp_path, preferAppend=True)
    load(snowflake_account, tmp_path, preferAppend=True)
    db = snowflake_account.database
    found = snowflake_account.query(f'SELECT ID, TOTAL FROM "{db}".WEB.ORDER_COMPLETED')
    assert found == [("m1", 1), ("m1", 1)]  # twice: appending does not look for the id


def test_an_account_out_of_reach_says_why(snowflake_account: Snowflake, tmp_path: Path) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"))
    with pytest.raises(WarehouseError, match="cannot connect to Snowflake account fakesnow"):
        load(snowflake_account, tmp_path, endpoint=f"http://127.0.0.1:{free_port()}")


def test_sdk_events_reach_the_snowflake_tables(
    workspace_config: str, snowflake_account: Snowflake, gateway: GatewayProcess,
    tmp_path: Path,
) -> None:  # fmt: skip
    config = snowflake_account.settings(syncFrequency="1440")
    connect_destinations(workspace_config, ("sf", "snowflake", config), delivery=STAGE_FAST)
    shown = send_and_sync(workspace_config, gateway, tmp_path, "sf")
    assert "loaded" in shown and "into WEBSITE" in shown, shown
    db = snowflake_account.database
    tables = {row[0] for row in snowflake_account.query(
        f'SELECT table_name FROM "{db}".information_schema.tables '
        "WHERE table_schema = 'WEBSITE'")}  # fmt: skip
    assert {"TRACKS", "ORDER_COMPLETED", "ANONYMOUS_VISIT", "IDENTIFIES", "USERS", "PAGES",
            "SCREENS", "GROUPS", "ALIASES"} <= tables  # fmt: skip
    order = snowflake_account.query(
        f"SELECT ID, USER_ID, ORDER_ID, TOTAL, CONTEXT_LIBRARY_NAME, CONTEXT_DESTINATION_TYPE "
        f'FROM "{db}".WEBSITE.ORDER_COMPLETED'
    )
    assert order == [("wh-track", "user-1", "o-1", 42.5, "analytics-python", "SNOWFLAKE")]
    users = snowflake_account.query(f'SELECT ID, EMAIL, PLAN FROM "{db}".WEBSITE.USERS')
    assert users == [("user-1", "ada@example.com", "pro")]
    [status] = json.loads(sluice(workspace_config, "warehouse", "status", "--json"))
    assert status["loads"][0]["tables"]["TRACKS"] == 2


def test_a_database_named_in_lower_case_and_text_that_looks_like_a_null(
    snowflake_account: Snowflake, tmp_path: Path
) -> None:
    # `analytics` names ANALYTICS, as it does in RudderStack's configs; a text `\N` is text.
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", note="\\N", empty=" "))
    load(snowflake_account, tmp_path, database=snowflake_account.database.lower())
    db = snowflake_account.database
    rows = snowflake_account.query(f'SELECT ID, NOTE FROM "{db}".WEB.ORDER_COMPLETED')
    assert rows == [("m1", "\\N")]
