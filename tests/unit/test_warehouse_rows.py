"""The rows an event becomes in a warehouse: every shared conformance case
(tests/conformance/warehouse.json, produced by RudderStack's own transformer), strict on tables,
column names and types, values and their order; then the JavaScript behaviours behind them."""

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.warehouses import names, rows
from engine.warehouses.errors import EventRefused

CASES = json.loads((Path(__file__).parents[1] / "conformance/warehouse.json").read_text())


def _rows(
    event: Any, provider: names.Provider = "POSTGRES", **options: Any
) -> list[dict[str, Any]]:
    # Through the event codec, as the pipeline decodes events (fractions arrive as text).
    decoded = codec.decode(json.dumps(event))
    found = rows.rows(decoded, provider, msgspec.convert(options, rows.Options))
    return [msgspec.to_builtins(row) for row in found]


def _ordered(value: Any) -> Any:
    """The value with each object's key order made visible to ==."""
    if isinstance(value, dict):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_conformance(case: dict[str, Any]) -> None:
    options = {key: value for key, value in case["options"].items() if key != "provider_code"}
    provider = case["options"]["provider_code"]
    if "expected_error" in case:
        with pytest.raises(EventRefused) as refused:
            _rows(case["event"], provider, **options)
        assert refused.value.kind == case["expected_error"]["type"]
        assert str(refused.value) == case["expected_error"]["message"]
        return
    got = _rows(case["event"], provider, **options)
    assert got == case["expected"]
    assert _ordered(got) == _ordered(case["expected"])


def test_the_cases_cover_every_warehouse_and_call_type() -> None:
    assert {case["options"]["provider_code"] for case in CASES} == set(names.PROVIDERS)
    kinds = {case["event"]["type"] for case in CASES}
    assert kinds == {"track", "identify", "page", "screen", "group", "alias", "extract", "merge"}


TRACK = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-1",
    "userId": "u-1",
    "receivedAt": "2024-03-01T10:00:00.000Z",
}


def _table(found: list[dict[str, Any]], table: str) -> dict[str, Any]:
    (row,) = [row for row in found if row["table"] == table]
    return row


def test_integer_like_keys_come_first_as_in_a_javascript_object() -> None:
    event = {**TRACK, "properties": {"b": 1, "2": "two", "a": 2, "1": "one"}}
    row = _table(_rows(event), "order_completed")
    assert list(row["data"])[:4] == ["_1", "_2", "b", "a"]


def test_numbers_are_javascript_numbers() -> None:
    event = {**TRACK, "properties": {"whole": 2.0, "half": 0.5, "big": 1e21, "tiny": 1e-7}}
    row = _table(_rows(event), "order_completed")
    assert (row["columns"]["whole"], row["columns"]["half"]) == ("int", "float")
    assert row["columns"]["big"] == "int"  # Number.isInteger(1e21)
    stored = _rows(event, destination_config={"storeFullEvent": True})
    text = _table(stored, "tracks")["data"]["rudder_event"]
    assert '"whole":2,"half":0.5,"big":1e+21,"tiny":1e-7' in text


def test_the_full_event_is_stored_after_pre_processing() -> None:
    event = {"type": "page", "name": "Home", "receivedAt": "garbage", "context": None}
    metadata = {"receivedAt": "2024-03-01T10:00:00.000Z", "sourceId": "src-1"}
    found = _rows(event, destination_config={"storeFullEvent": True}, metadata=metadata)
    stored = json.loads(found[0]["data"]["rudder_event"])
    assert stored["receivedAt"] == "2024-03-01T10:00:00.000Z"  # the metadata's, as loaded
    assert stored["context"] == {"sourceId": "src-1"}  # ids that are not there are left out
    assert re.fullmatch(r"auto-[0-9a-f-]{36}", stored["messageId"])
    assert found[0]["data"]["id"] == stored["messageId"]


def test_empty_metadata_still_gives_the_event_a_context() -> None:
    event = {"type": "alias", "userId": "u", "previousId": "p", "receivedAt": TRACK["receivedAt"]}
    found = _rows(event, destination_config={"storeFullEvent": True}, metadata={})
    assert json.loads(found[0]["data"]["rudder_event"])["context"] == {}


def test_received_at_falls_back_to_now() -> None:
    found = _rows({"type": "page", "name": "Home"})
    received = found[0]["data"]["received_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", received)


def test_lodash_blank_rules() -> None:
    event = {**TRACK, "properties": {"a": [None], "b": [[]], "c": [], "d": "", "e": 0, "f": {}}}
    data = _table(_rows(event), "order_completed")["data"]
    assert data["a"] == [None]  # "null" to lodash: not blank
    assert data["e"] == 0
    assert not {"b", "c", "d", "f"} & set(data)


def test_a_string_spread_into_an_object_is_a_string_again() -> None:
    spread = {"type": "track", "event": "x", "context": {"traits": {"1": "f", "2": "o", "3": "o"}}}
    data = _table(_rows({**TRACK, **spread}), "tracks")["data"]
    assert data["context_traits"] == "foo"
    gap = {"type": "track", "event": "x", "context": {"traits": {"1": "a", "3": "b"}}}
    data = _table(_rows({**TRACK, **gap}), "tracks")["data"]
    assert (data["context_traits_1"], data["context_traits_3"]) == ("a", "b")


def test_rudderstack_columns_are_not_the_users() -> None:
    props = {"user_id": "spoofed", "constructor": "x", "uuid_ts": "2024-01-01", "event": "e"}
    row = _table(_rows({**TRACK, "properties": props}), "order_completed")
    assert row["data"]["user_id"] == "u-1"
    assert "constructor" not in row["data"]  # found on every JavaScript object by RudderStack
    assert row["columns"]["uuid_ts"] == "datetime"
    assert row["data"]["event"] == "order_completed"


def test_data_warehouse_json_paths_are_merged_into_the_events_own_options() -> None:
    event = {
        **TRACK,
        "properties": {"blob": {"x": 1}, "other": {"y": 2}},
        "integrations": {
            "DATA_WAREHOUSE": {"options": {"jsonPaths": ["track.properties.blob"]}},
            "POSTGRES": {"options": {}},
        },
    }
    options = {"destination_config": {"storeFullEvent": True, "jsonPaths": "other"}}
    found = _rows(event, "POSTGRES", **options)
    row = _table(found, "order_completed")
    assert row["data"]["blob"] == '{"x":1}'
    assert row["data"]["other"] == '{"y":2}'
    assert (row["columns"]["blob"], row["columns"]["other"]) == ("json", "json")
    stored = json.loads(_table(found, "tracks")["data"]["rudder_event"])
    assert stored["integrations"]["POSTGRES"]["options"]["jsonPaths"] == [
        "track.properties.blob",
        "other",
    ]


def test_clickhouse_arrays_when_asked_for() -> None:
    event = {**TRACK, "properties": {"n": [1, 2.5], "mixed": [1, "a"], "s": ["a"], "e": []}}
    asked = _table(_rows(event, "CLICKHOUSE", request_query={"chEnableArraySupport": "true"}),
                   "order_completed")  # fmt: skip
    assert asked["columns"]["n"] == "array(float)"
    assert asked["columns"]["mixed"] == "array(string)"
    assert asked["columns"]["s"] == "array(string)"
    assert "e" not in asked["data"]  # [] is blank
    plain = _table(_rows(event, "CLICKHOUSE"), "order_completed")
    assert plain["columns"]["n"] == "string"


def test_redshift_long_strings_are_text() -> None:
    event = {**TRACK, "properties": {"short": "a" * 512, "long": "😀" * 257, "list": ["a" * 520]}}
    columns = _table(_rows(event, "RS"), "order_completed")["columns"]
    assert columns["short"] == "string"
    assert columns["long"] == "text"  # 514 UTF-16 units
    assert columns["list"] == "text"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "bogus"}, 'Unknown event type: "bogus"'),
        ({}, 'Unknown event type: "undefined"'),
        ({"type": "track", "event": 5}, "the event name must be a string, not 5"),
        ({"type": "extract", "recordId": "r"}, "cannot create event table with empty event"),
        ({"type": "extract", "event": "e"}, "recordId cannot be empty for cloud sources events"),
        ({"type": "merge", "mergeProperties": [{"type": "email", "value": "a"}]},
         "either or both identifiers missing in mergeProperties"),
        ({"type": "track", "event": "x", "properties": {f"k{i}": i for i in range(200)}},
         "postgres transformer: Too many columns outputted from the event"),
    ],
)  # fmt: skip
def test_refusals_say_what_is_wrong(event: dict[str, Any], message: str) -> None:
    query = {"whIDResolve": "true"}
    provider: names.Provider = "BQ" if event.get("type") == "merge" else "POSTGRES"
    with pytest.raises(EventRefused, match=re.escape(message)):
        _rows({**event, "receivedAt": TRACK["receivedAt"]}, provider, request_query=query)


def test_a_sources_row_may_have_any_number_of_columns() -> None:
    event = {**TRACK, "channel": "sources", "properties": {f"k{i}": i for i in range(250)}}
    assert len(_table(_rows(event), "order_completed")["columns"]) > 250


def test_merge_rules_only_where_identity_resolution_is_on() -> None:
    event = {"type": "identify", "userId": 7, "anonymousId": "a", "receivedAt": TRACK["receivedAt"]}
    resolved = _rows(event, "SNOWFLAKE", request_query={"whIDResolve": "true"})
    rule = _table(resolved, "RUDDER_IDENTITY_MERGE_RULES")
    assert rule["is_merge_rule"] is True
    assert rule["data"]["MERGE_PROPERTY_2_VALUE"] == "7"
    assert "UUID_TS" not in rule["columns"]
    users = _table(resolved, "USERS")
    assert (users["data"]["ID"], users["columns"]["ID"]) == (7, "int")
    plain = _rows(event, "POSTGRES", request_query={"whIDResolve": "true"})
    assert [row["table"] for row in plain] == ["identifies", "users"]
