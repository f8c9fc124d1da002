"""The GA4 mapping: settings, refusals, GA4's naming rules, answers and the validation helpers."""

import contextlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import codec
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.ga4 import GA4, debug_request, validation_messages
from tests.sink import Arrival
from tests.vendors.ga4 import GA4Double

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cr3t-api-value"
WEB = {"apiSecret": SECRET, "measurementId": "G-TEST123", "typesOfClient": "gtag"}
APP = {"apiSecret": SECRET, "firebaseAppId": "1:123:android:abc", "typesOfClient": "firebase"}


def one(event: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of the one request an event makes (as it travels: JSON decoded)."""
    [request] = GA4.map(event, GA4.parse_settings(config or WEB), NOW)
    body: dict[str, Any] = json.loads(codec.encode(request.body))
    return body


def ga4_event(event: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    [made] = one(event, config)["events"]
    return made  # type: ignore[no-any-return]


def track(name: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "anonymousId": "anon-1", **fields}


def refused(event: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    with pytest.raises(Unsendable) as caught:
        GA4.map(event, GA4.parse_settings(config or WEB), NOW)
    message = str(caught.value)
    assert SECRET not in message
    return message


# --- Settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"measurementId": "G-1"}, "apiSecret"),
        ({**WEB, "apiSecret": "  "}, "apiSecret is required"),
        ({**WEB, "apiSecret": f" {SECRET}"}, "spaces around it"),
        ({**WEB, "typesOfClient": "ios"}, "typesOfClient must be 'gtag'"),
        ({**WEB, "measurementId": ""}, "measurementId (G-XXXXXXXXXX) is required"),
        ({**APP, "firebaseAppId": ""}, "firebaseAppId is required"),
        ({**WEB, "endpoint": "ftp://proxy"}, "not an http(s) URL"),
        ({**WEB, "endpoint": "https://proxy/x?y=1"}, "without query"),
        ({**WEB, "debugMode": "yes"}, "debugMode"),
    ],
)
def test_bad_settings_say_what_is_wrong_without_the_secret(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as caught:
        GA4.parse_settings(config)
    assert SECRET not in str(caught.value)
    assert str(caught.value).startswith("Google Analytics 4 settings:")


def test_a_rudderstack_config_with_its_other_keys_is_taken() -> None:
    settings = GA4.parse_settings(
        {
            **WEB,
            "eventFilteringOption": "disable",
            "useNativeSDK": {"web": False},
            "piiPropertiesToIgnore": [{"piiProperty": ""}],
            "sdkBaseUrl": "https://x",
            "debugMode": False,
        }
    )
    assert settings.measurementId == "G-TEST123"
    assert GA4.secrets(WEB) == [SECRET]


# --- Requests ------------------------------------------------------------------------------


def test_web_and_app_streams_authenticate_in_the_query_string() -> None:
    [web] = GA4.map(track("Signed Up"), GA4.parse_settings(WEB), NOW)
    assert (web.method, web.url) == ("POST", "https://www.google-analytics.com/mp/collect")
    assert web.params == {"api_secret": SECRET, "measurement_id": "G-TEST123"}
    assert web.headers == {"Content-Type": "application/json"}
    event = track("Signed Up", context={"externalId": [{"type": "ga4AppInstanceId", "id": "abc"}]})
    [app] = GA4.map(event, GA4.parse_settings(APP), NOW)
    assert app.params == {"api_secret": SECRET, "firebase_app_id": "1:123:android:abc"}
    assert app.body["app_instance_id"] == "abc" and "client_id" not in app.body


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("https://region1.google-analytics.com", "https://region1.google-analytics.com/mp/collect"),
        ("http://127.0.0.1:9/ga/", "http://127.0.0.1:9/ga/mp/collect"),
    ],
)
def test_the_endpoint_setting_replaces_the_host_and_keeps_the_path(endpoint: str, url: str) -> None:
    [request] = GA4.map(track("x"), GA4.parse_settings({**WEB, "endpoint": endpoint}), NOW)
    assert request.url == url


def test_debug_mode_sends_to_the_validation_endpoint() -> None:
    [request] = GA4.map(track("x"), GA4.parse_settings({**WEB, "debugMode": True}), NOW)
    assert request.url == "https://www.google-analytics.com/debug/mp/collect"


def test_ids_time_and_consent() -> None:
    body = one(
        track(
            "Clicked",
            userId=42,
            timestamp="2026-03-01T11:00:00.123456Z",
            context={"device": {"adTrackingEnabled": False}},
            integrations={
                "ga4": {"consents": {"ad_user_data": "denied", "ad_personalization": "GRANTED"}}
            },
        )
    )
    assert body["client_id"] == "anon-1" and body["user_id"] == "42"
    stamp = datetime(2026, 3, 1, 11, 0, 0, 123456, tzinfo=UTC)
    assert body["timestamp_micros"] == int(stamp.timestamp()) * 1_000_000 + 123456
    assert body["consent"] == {"ad_user_data": "DENIED", "ad_personalization": "GRANTED"}
    assert body["non_personalized_ads"] is True
    assert "user_id" not in one(track("x", userId="u"), {**WEB, "sendUserId": False})
    assert (
        one(track("x", context={"traits": {"userId": "from-traits"}}))["user_id"] == "from-traits"
    )


def test_time_limits_are_measured_against_the_processing_time() -> None:
    def at(delta: timedelta) -> dict[str, Any]:
        return track("x", timestamp=(NOW + delta).isoformat())

    assert "timestamp_micros" in one(at(-timedelta(hours=71, minutes=59)))
    assert "timestamp_micros" in one(at(timedelta(minutes=14)))
    assert "72 hours" in refused(at(-timedelta(hours=72, seconds=1)))
    assert "15 minutes" in refused(at(timedelta(minutes=16)))
    assert "timestamp_micros" not in one(track("x"))  # GA4 takes the arrival time


def test_custom_params_are_flattened_and_kept_within_limits() -> None:
    props = {
        "plan": {"tier": "pro", "seats": 3},
        "tags": ["a"],
        "empty": "",
        "none": None,
        "google_x": 1,
        "ga_y": 2,
        "bad-name": 3,
        "price": codec.decode(b"1.50"),
        "session_id": "s-9",
        "engagement_time_msec": "250",
        "user_properties": {"a": 1},
    }
    params = ga4_event(track("Plan Chosen", properties=props))["params"]
    assert params == {
        "plan_tier": "pro",
        "plan_seats": 3,
        "price": 1.50,
        "session_id": "s-9",
        "engagement_time_msec": 250,
    }
    [request] = GA4.map(track("Plan Chosen", properties=props), GA4.parse_settings(WEB), NOW)
    assert b'"price":1.50' in codec.encode(request.body)  # sent as it was written
    many = {f"p{n}": n for n in range(40)}
    page = {"page": {"url": "https://shop/x", "title": "T" * 400}}
    params = ga4_event(track("Lots", properties=many, context=page))["params"]
    assert len(params) == 25 and params["page_location"] == "https://shop/x"
    assert len(params["page_title"]) == 300 and params["engagement_time_msec"] == 1


def test_page_and_group() -> None:
    page = ga4_event(
        {
            "type": "page",
            "anonymousId": "a",
            "name": "Docs",
            "properties": {"url": "https://d/x", "title": "Docs", "path": "/x"},
        }
    )
    assert page == {
        "name": "page_view",
        "params": {
            "page_location": "https://d/x",
            "page_title": "Docs",
            "path": "/x",
            "engagement_time_msec": 1,
        },
    }
    group = ga4_event(
        {
            "type": "group",
            "anonymousId": "a",
            "groupId": 7,
            "traits": {"name": "Acme", "id": "g"},
            "context": {"traits": {"id": "u"}},
        }
    )
    assert group["name"] == "join_group"
    assert group["params"] == {
        "group_id": "7",
        "name": "Acme",
        "id": "g",
        "engagement_time_msec": 1,
    }


def test_user_properties_from_traits_are_filtered_and_explicit_ones_checked() -> None:
    traits = {
        "plan": "pro",
        "age": 30,
        "vip": True,
        "bad-name": "x",
        "user_id": "u",
        "google_x": "y",
        "bio": "z" * 37,
        "address": {"city": "x"},
        "email": "a@b.c",
    }
    body = one(
        track(
            "x",
            context={"traits": traits},
            properties={"user_properties": {"plan": "team", "score": {"value": 9}}},
        ),
        {**WEB, "piiPropertiesToIgnore": [{"piiProperty": "email"}]},
    )
    assert body["user_properties"] == {
        "plan": {"value": "team"},
        "score": {"value": 9},
        "age": {"value": 30},
        "vip": {"value": True},
    }
    for name, value, why in [
        ("first_open_time", 1, "reserves"),
        ("ga_x", 1, "reserves"),
        ("a" * 25, 1, "23 letters"),
        ("city", "c" * 37, "36 characters"),
        ("tags", ["a"], "text, numbers or booleans"),
    ]:
        message = refused(track("x", properties={"user_properties": {name: value}}))
        assert why in message and "user_properties" in message
    many = {f"p{n}": n for n in range(30)}
    assert len(one(track("x", context={"traits": many}))["user_properties"]) == 25
    assert "at most 25" in refused(track("x", properties={"user_properties": many}))


# --- E-commerce ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "ga4"),
    [
        ("Products Searched", "search"),
        ("product list viewed", "view_item_list"),
        ("Promotion_Viewed", "view_promotion"),
        ("Cart Viewed", "view_cart"),
        ("Checkout Started", "begin_checkout"),
        ("Payment Info Entered", "add_payment_info"),
        ("Checkout Step Completed", "add_shipping_info"),
        ("Cart Shared", "share"),
        ("Product Shared", "share"),
        ("login", "login"),
        ("sign_up", "sign_up"),
        ("generate_lead", "generate_lead"),
    ],
)
def test_segment_ecommerce_names_become_ga4_recommended_events(segment: str, ga4: str) -> None:
    assert ga4_event(track(segment))["name"] == ga4


def test_single_product_events_build_their_item_from_the_root() -> None:
    props = {
        "product_id": "p1",
        "name": "Tee",
        "price": "9.90",
        "quantity": "x",
        "position": 3,
        "category": "Apparel",
        "currency": "EUR",
        "cart_id": "c1",
    }
    made = ga4_event(track("Product Added", properties=props))
    assert made["name"] == "add_to_cart"
    assert made["params"]["items"] == [
        {"item_id": "p1", "item_name": "Tee", "price": 9.9, "index": 3, "item_category": "Apparel"}
    ]
    assert made["params"]["currency"] == "EUR" and made["params"]["cart_id"] == "c1"
    assert "price" not in made["params"] and "value" not in made["params"]
    assert "needs a product" in refused(track("Product Viewed", properties={"price": 1}))


def test_renamed_and_ga4_shaped_properties() -> None:
    search = ga4_event(track("Products Searched", properties={"query": "shoes"}))
    assert search["params"]["search_term"] == "shoes" and "query" not in search["params"]
    promo = ga4_event(track("Promotion Viewed", properties={"name": "Sale", "creative": "b"}))
    assert promo["params"]["promotion_name"] == "Sale"
    assert promo["params"]["creative_name"] == "b"
    purchase = ga4_event(
        track(
            "purchase",
            properties={
                "transaction_id": "T1",
                "value": 5,
                "items": [{"item_id": "a", "price": 5}],
            },
        )
    )
    assert purchase["params"]["transaction_id"] == "T1" and purchase["params"]["currency"] == "USD"
    assert purchase["params"]["items"] == [{"item_id": "a", "price": 5}]
    item = ga4_event(track("Cart Viewed", properties={"products": [{"sku": "S", "id": "i"}]}))
    assert item["params"]["items"] == [{"item_id": "S", "id": "i"}]


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (track("Order Completed", properties={"total": 5}), "needs properties.order_id"),
        (track("Order Refunded"), "needs properties.order_id"),
        (track("Cart Viewed", properties={"products": [{"price": 1}]}), "products[0] needs"),
        (track("Cart Viewed", properties={"products": ["p1"]}), "products[0] is not an object"),
        (track("Cart Viewed", properties={"products": [{"name": "x"}] * 201}), "200 items"),
    ],
)
def test_ecommerce_events_ga4_would_not_count_are_refused(event: dict[str, Any], why: str) -> None:
    assert why in refused(event)


# --- Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"type": "identify", "anonymousId": "a"}, "track, page and group"),
        ({"type": "screen", "anonymousId": "a"}, "track, page and group"),
        ({"type": {"x": 1}, "anonymousId": "a"}, "not 'dict'"),
        ({"type": "track", "anonymousId": "a"}, "needs an event name"),
        (track("  "), "needs an event name"),
        (track("session_start"), "GA4 reserves"),
        (track("first visit"), "GA4 reserves"),
        (track("_private"), "starting with _"),
        (track("firebase_thing"), "starting with _, firebase_"),
        (track("Google_Stuff"), "starting with _, firebase_"),
        (track("notification_open"), "notification_"),
        (track("1st Step"), "start with a letter"),
        (track("sign-up"), "letters, digits and underscores"),
        (track("héllo"), "letters, digits and underscores"),
        (track("x" * 41), "at most 40 characters"),
        ({"type": "track", "event": "x"}, "needs a client id"),
        (track("x", integrations={"GA4": {"consents": {"ad_user_data": "yes"}}}), "GRANTED"),
        (track("x", properties={"blob": "x" * 140_000}), "130 kB"),
    ],
)
def test_events_ga4_would_drop_are_refused(event: dict[str, Any], why: str) -> None:
    assert why in refused(event)


def test_an_app_stream_needs_the_app_instance_id() -> None:
    assert "ga4AppInstanceId" in refused(track("x"), APP)


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "track",
            "event": "x",
            "anonymousId": "a",
            "properties": ["x"],
            "context": "c",
            "userId": {"a": 1},
            "timestamp": "yesterday",
            "integrations": [1],
            "traits": 5,
        },
        {"type": "page", "anonymousId": ["a"], "context": {"externalId": "nope", "page": []}},
        {
            "type": "group",
            "anonymousId": "a",
            "traits": {"a": {"b": {"c": {"d": 1}}}},
            "groupId": {"x": 1},
        },
        track("Product Added", properties={"products": {"not": "a list"}, "product_id": ["x"]}),
        track("x", properties={"nested": json.loads("[" * 50 + "]" * 50)}),
        track("x", properties=json.loads('{"a":' * 200 + "1" + "}" * 200)),
    ],
)
def test_wrongly_typed_input_never_raises_anything_but_unsendable(event: dict[str, Any]) -> None:
    with contextlib.suppress(Unsendable):
        GA4.map(event, GA4.parse_settings(WEB), NOW)


# --- Answers -------------------------------------------------------------------------------

_INVALID = json.dumps(
    {
        "validationMessages": [
            {
                "fieldPath": "events",
                "validationCode": "NAME_INVALID",
                "description": "Event at index: [0] has invalid name [_x].",
            }
        ]
    }
).encode()


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (204, b"", Verdict.DELIVERED),
        (200, b"<html>ok</html>", Verdict.DELIVERED),
        (200, b'{"validationMessages": []}', Verdict.DELIVERED),
        (429, b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', Verdict.RETRY),
        (500, b"", Verdict.RETRY),
        (503, b"\xff\xfe garbage", Verdict.RETRY),
        (400, b"", Verdict.ABORT),
        (403, b'{"error": {"code": 403, "status": "PERMISSION_DENIED"}}', Verdict.ABORT),
        (404, b"not json", Verdict.ABORT),
    ],
)
def test_classify(status: int, body: bytes, verdict: Verdict) -> None:
    assert GA4.classify(status, body, 1) is verdict


def test_validation_failures_in_debug_mode_fail_the_event_in_ga4s_words() -> None:
    [judged] = GA4.classify(200, _INVALID, 1)  # type: ignore[misc]
    assert judged == Judgement(
        Verdict.ABORT, "Event at index: [0] has invalid name [_x]. (field events, NAME_INVALID)"
    )


def test_debug_request_keeps_everything_but_the_path() -> None:
    settings = GA4.parse_settings({**WEB, "endpoint": "http://127.0.0.1:9/proxy"})
    [request] = GA4.map(track("x"), settings, NOW)
    debug = debug_request(request)
    assert debug.url == "http://127.0.0.1:9/proxy/debug/mp/collect"
    assert (debug.params, debug.headers, debug.body) == (
        request.params,
        request.headers,
        request.body,
    )
    assert debug_request(debug) == debug
    with pytest.raises(ValueError, match="not a GA4 Measurement Protocol"):
        debug_request(Request("POST", "https://example.com/hook"))


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (b'{"validationMessages": []}', []),
        (_INVALID, ["Event at index: [0] has invalid name [_x]. (field events, NAME_INVALID)"]),
        (
            b'{"validationMessages": [{"description": "d"}, "odd", {}]}',
            ["d", 'unreadable validation message: "odd"', "invalid payload"],
        ),
    ],
)
def test_validation_messages(body: bytes, messages: list[str]) -> None:
    assert validation_messages(body) == messages


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"[1]", b'{"other": 1}', b"\xff"])
def test_an_unreadable_validation_answer_is_one_message(body: bytes) -> None:
    [message] = validation_messages(body)
    assert message.startswith("could not read GA4's validation answer")


# --- Against the vendor double's validation endpoint ---------------------------------------


def _validate(double: GA4Double, request: Request) -> list[str]:
    debug = debug_request(request)
    arrival = Arrival(
        debug.method,
        "/debug/mp/collect",
        debug.params,
        debug.headers,
        codec.encode(debug.body),
        time.time(),
    )
    answer = double(arrival)
    assert answer.status == 200
    return validation_messages(answer.body.encode())


def test_what_the_mapping_sends_passes_validation() -> None:
    double = GA4Double(SECRET, measurement_id="G-TEST123")
    products = [{"product_id": "p", "name": "n", "price": "2"}]
    for event in [
        track(
            "Order Completed",
            properties={"order_id": "o", "total": 3, "products": products},
            context={"traits": {"plan": "pro"}, "page": {"url": "https://x"}},
        ),
        {"type": "page", "anonymousId": "a"},
        {"type": "group", "anonymousId": "a", "groupId": "g", "traits": {"n": 1}},
    ]:
        [request] = GA4.map(event, GA4.parse_settings(WEB), NOW)
        assert _validate(double, request) == []


def test_the_double_says_what_is_invalid() -> None:
    double = GA4Double(SECRET, measurement_id="G-TEST123")
    request = Request(
        "POST",
        "https://www.google-analytics.com/mp/collect",
        params={},
        body={"events": [{"name": "_bad"}, {"name": "ad_click"}]},
    )
    messages = _validate(double, request)
    assert any("client_id is required" in m for m in messages)
    assert any("[_bad]" in m and "NAME_INVALID" in m for m in messages)
    assert any("[ad_click]" in m and "NAME_RESERVED" in m for m in messages)
