"""The AppsFlyer mapping: settings it refuses, events it cannot send, what it sends, and what
AppsFlyer's answers mean."""

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from engine import codec
from engine.control import preview
from engine.destinations.appsflyer import APPSFLYER
from engine.destinations.base import BadSettings, Request, Unsendable, Verdict
from tests.sink import Arrival
from tests.vendors.appsflyer import AppsFlyerDouble

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEV_KEY = "dev-key-secret-1"
S2S_KEY = "s2s-key-secret-2"
CONFIG: dict[str, Any] = {"devKey": DEV_KEY, "androidAppId": "com.example.app",
                          "appleAppId": "123456789"}  # fmt: skip
SETTINGS = APPSFLYER.parse_settings(CONFIG)


def event(kind: str = "track", os: str = "android", **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "type": kind,
        "context": {
            "os": {"name": os},
            "externalId": [{"type": "appsflyerExternalId", "id": "af-1"}],
        },
    }
    if kind == "track":
        made["event"] = "Clicked"
    made.update(fields)
    return made


def sent(made: dict[str, Any], settings: Any = SETTINGS) -> tuple[str, dict[str, Any]]:
    [request] = APPSFLYER.map(codec.decode(json.dumps(made)), settings, NOW)
    return request.url, request.body


def value(made: dict[str, Any], settings: Any = SETTINGS) -> Any:
    text = sent(made, settings)[1]["eventValue"]
    assert isinstance(text, str)
    return json.loads(text) if text else text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"androidAppId": "a.b"}, "devKey is required with authVersion v1"),
        ({**CONFIG, "authVersion": "v2"}, "s2sKey is required with authVersion v2"),
        ({**CONFIG, "authVersion": "v3"}, "authVersion must be v1"),
        ({**CONFIG, "devKey": "has space"}, "devKey must be the key"),
        ({"devKey": DEV_KEY}, "androidAppId (package name) and/or appleAppId"),
        ({**CONFIG, "androidAppId": "com.x/../y"}, "androidAppId must be"),
        ({**CONFIG, "appleAppId": "app123"}, "appleAppId must be the App Store id"),
        ({**CONFIG, "appleAppId": "id12a"}, "appleAppId must be the App Store id"),
        ({**CONFIG, "addPropertiesAtRoot": "yes"}, "addPropertiesAtRoot"),
        ({**CONFIG, "endpoint": "not a url"}, "not an http(s) URL"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as refused:
        APPSFLYER.parse_settings(config)
    assert str(refused.value).startswith("AppsFlyer settings: ")
    assert "has space" not in str(refused.value)


def test_v2_needs_only_the_s2s_key() -> None:
    settings = APPSFLYER.parse_settings(
        {"authVersion": "v2", "s2sKey": S2S_KEY, "androidAppId": "com.example.app"}
    )
    [request] = APPSFLYER.map(event(), settings, NOW)
    assert request.url == "https://api3.appsflyer.com/inappevent/com.example.app"
    assert request.headers["authentication"] == S2S_KEY


def test_v1_sends_the_dev_key_to_api2() -> None:
    [request] = APPSFLYER.map(event(), SETTINGS, NOW)
    assert request.url == "https://api2.appsflyer.com/inappevent/com.example.app"
    assert request.headers == {"Content-Type": "application/json", "authentication": DEV_KEY}


@pytest.mark.parametrize("configured", ["123456789", "id123456789"])
@pytest.mark.parametrize("os", ["ios", "iOS", "iPadOS", "tvos"])
def test_an_ios_event_always_goes_to_the_id_prefixed_app(configured: str, os: str) -> None:
    url, _ = sent(event(os=os), APPSFLYER.parse_settings({**CONFIG, "appleAppId": configured}))
    assert url == "https://api2.appsflyer.com/inappevent/id123456789"


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (event("identify"), "not 'identify'"),
        (event("group"), "not 'group'"),
        (event("alias"), "not 'alias'"),
        ({"type": "track", "event": "E", "context": {"os": {"name": "android"}}},
         "no AppsFlyer id"),
        (event(context={"externalId": [{"type": "other", "id": "x"}]}), "no AppsFlyer id"),
        (event(os=""), "no app id configured"),
        (event(os="windows"), "'windows' has no app id configured"),
        (event(context={"externalId": [{"type": "appsflyerExternalId", "id": "a"}]}),
         "'null' has no app id"),
        (event(event=""), "no event name"),
        (event(event=["E"]), "no event name"),
    ],
)  # fmt: skip
def test_events_appsflyer_cannot_take_are_refused(made: dict[str, Any], message: str) -> None:
    with pytest.raises(Unsendable, match=re.escape(message)) as refused:
        APPSFLYER.map(made, SETTINGS, NOW)
    assert DEV_KEY not in str(refused.value)


def test_an_os_without_its_app_id_is_refused() -> None:
    android_only = APPSFLYER.parse_settings({"devKey": DEV_KEY, "androidAppId": "com.a"})
    with pytest.raises(Unsendable, match="needs appleAppId"):
        APPSFLYER.map(event(os="ios"), android_only, NOW)


GARBLED = {
    "os": {"name": "android", "version": {}},
    "externalId": [{"type": "appsflyerExternalId", "id": "a"}],
    "device": {"advertisingId": [], "attTrackingStatus": True},
}


@pytest.mark.parametrize(
    "made",
    [
        {},
        {"type": "page", "context": []},
        event(context={"externalId": "af", "os": "android"}),
        event(context={"externalId": [None, {"type": "appsflyerExternalId", "id": 5}]}),
        event(context={"externalId": [{"type": "appsflyerExternalId", "id": "a"}], "os": 1}),
        event(properties=[1, 2]),
        event(event="Order Completed", properties={"products": "many", "revenue": {}}),
        event(event="Order Completed", properties={"products": [None, 3, {"price": None}]}),
        event(timestamp="0001-01-01T00:00:00-23:00"),
        event(timestamp="not a time", context=GARBLED),
    ],
)
def test_garbage_is_refused_or_sent_never_an_unexpected_error(made: dict[str, Any]) -> None:
    try:
        _, body = sent(made)
    except Unsendable:
        return
    assert isinstance(body["eventValue"], str)


def test_track_wraps_properties_and_adds_commerce_keys() -> None:
    props = {"revenue": 10, "price": 4, "quantity": 2, "product_id": "p", "category": "c",
             "order_id": "o", "currency": "NOK"}  # fmt: skip
    _, body = sent(event(event="Order Completed", userId=42, properties=props))
    assert json.loads(body["eventValue"]) == {
        "properties": props, "af_revenue": 10, "af_price": 4, "af_quantity": 2,
        "af_content_id": "p", "af_content_type": "c", "af_order_id": "o",
    }  # fmt: skip
    assert body["eventCurrency"] == "NOK" and body["customer_user_id"] == "42"
    assert body["eventName"] == "Order Completed"  # no af_purchase renaming


def test_products_become_per_product_arrays() -> None:
    props = {"products": [{"product_id": "a", "price": 1.50, "quantity": 1}, {"product_id": "b"}]}
    got = value(event(event="checkout started", properties=props))
    assert got["af_content_id"] == ["a", "b"]
    assert got["af_price"] == [1.5, None] and got["af_quantity"] == [1, None]


def test_search_and_view_events_take_their_keys() -> None:
    got = value(event(event="Products Searched", properties={"query": "shoes", "price": 3}))
    assert got == {"properties": {"query": "shoes", "price": 3}, "af_search_string": "shoes"}
    got = value(event(event="Product Viewed", properties={"price": 3, "quantity": 9}))
    assert got == {"properties": {"price": 3, "quantity": 9}, "af_price": 3}


def test_properties_at_root_listed_properties_and_currency_at_root() -> None:
    props = {"a": 1, "b": 2, "currency": "EUR"}
    at_root = APPSFLYER.parse_settings({**CONFIG, "addPropertiesAtRoot": True})
    assert value(event(properties=props), at_root) == props
    listed = APPSFLYER.parse_settings(
        {**CONFIG, "listOfProps": [{"property": "a"}, "currency"], "afCurrencyAtRoot": True}
    )
    assert value(event(properties=props), listed) == {
        "a": 1, "currency": "EUR", "properties": {"b": 2}, "af_currency": "EUR",
    }  # fmt: skip


def test_page_and_screen_names_and_values() -> None:
    props = {"name": "Docs", "url": "https://x"}
    _, body = sent(event("page", properties=props))
    assert body["eventName"] == "page" and json.loads(body["eventValue"]) == props
    rich = APPSFLYER.parse_settings({**CONFIG, "useRichEventName": True})
    assert sent(event("page", properties=props), rich)[1]["eventName"] == "Viewed Docs Page"
    _, body = sent(event("screen", name="Home"), rich)
    assert body["eventName"] == "Viewed Home Screen" and body["eventValue"] == ""
    assert sent(event("screen"), rich)[1]["eventName"] == "Viewed Screen"


def test_no_properties_make_an_empty_event_value() -> None:
    assert sent(event())[1]["eventValue"] == ""
    assert sent(event(properties={}))[1]["eventValue"] == ""


def test_device_app_and_time_details() -> None:
    context = {
        "os": {"name": "ios", "version": "17.2"},
        "externalId": [{"type": "appsflyerExternalId", "id": "af-1"}],
        "device": {"id": "V", "advertisingId": "00000000-0000-0000-0000-000000000000",
                   "attTrackingStatus": 3},
        "app": {"version": "2.0", "namespace": "com.example"},
        "ip": "1.2.3.4",
    }  # fmt: skip
    made = event(context=context, timestamp="2026-01-01T12:00:00.5+02:00")
    settings = APPSFLYER.parse_settings({**CONFIG, "sharingFilter": "all"})
    _, body = sent(made, settings)
    assert body["eventTime"] == "2026-01-01 10:00:00.500"
    assert (body["idfv"], body["att"], body["os"], body["ip"]) == ("V", 3, "17.2", "1.2.3.4")
    assert "idfa" not in body  # all zeros: the user refused tracking
    assert (body["app_version_name"], body["bundleIdentifier"]) == ("2.0", "com.example")
    assert body["sharing_filter"] == "all"
    android = {**context, "os": {"name": "android"}, "device": {"advertisingId": "G"}}
    _, body = sent(event(context=android))
    assert body["advertising_id"] == "G" and "idfv" not in body and "att" not in body


def test_endpoint_replaces_the_host_and_keeps_the_path() -> None:
    for auth in ({"devKey": DEV_KEY}, {"authVersion": "v2", "s2sKey": S2S_KEY}):
        settings = APPSFLYER.parse_settings(
            {**auth, "appleAppId": "42", "endpoint": "http://127.0.0.1:9/af/"}
        )
        url, _ = sent(event(os="ios"), settings)
        assert url == "http://127.0.0.1:9/af/inappevent/id42"


def test_both_keys_are_secrets_masked_in_previews() -> None:
    config = {**CONFIG, "s2sKey": S2S_KEY}
    assert sorted(APPSFLYER.secrets(config)) == sorted([DEV_KEY, S2S_KEY])
    [shown] = preview.of_type("appsflyer", config, event())
    assert shown.headers["authentication"] == "****"


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b"ok", Verdict.DELIVERED),
        (200, b"\x00\xff", Verdict.DELIVERED),
        (400, b"Bad Request: eventValue is mandatory", Verdict.ABORT),
        (401, b"Unauthorized", Verdict.ABORT),
        (403, b"", Verdict.ABORT),
        (404, b"<html>not found</html>", Verdict.ABORT),
        (429, b"Too Many Requests", Verdict.RETRY),
        (500, b"Internal Server Error", Verdict.RETRY),
        (502, b"<html>bad gateway</html>", Verdict.RETRY),
        (503, b"", Verdict.RETRY),
    ],
)
def test_answers_are_classified(status: int, body: bytes, verdict: Verdict) -> None:
    assert APPSFLYER.classify(status, body, 1) is verdict


def as_arrival(request: Request, path: str | None = None) -> Arrival:
    body = codec.encode(request.body)
    return Arrival(request.method, path or urlsplit(request.url).path, request.params,
                   request.headers, body, 0.0)  # fmt: skip


def test_the_vendor_double_takes_what_the_mapping_sends_and_drops_bare_ios_ids() -> None:
    appsflyer = AppsFlyerDouble(DEV_KEY, frozenset({"id123456789"}))
    [request] = APPSFLYER.map(event(os="ios", properties={"a": 1}), SETTINGS, NOW)
    assert appsflyer(as_arrival(request)).status == 200
    bare = appsflyer(as_arrival(request, "/inappevent/123456789"))
    assert (bare.status, bare.body) == (200, "ok")  # AppsFlyer's silent drop
    assert [app for app, _ in appsflyer.accepted] == ["id123456789"]
    assert [app for app, _ in appsflyer.dropped] == ["123456789"]
    as_object = Request(request.method, request.url, request.headers,
                        body={**request.body, "eventValue": {"a": 1}})  # fmt: skip
    assert appsflyer(as_arrival(as_object)).status == 400
    wrong_key = Request(request.method, request.url, {**request.headers, "authentication": "x"},
                        body=request.body)  # fmt: skip
    assert appsflyer(as_arrival(wrong_key)).status == 401
