"""The Meta destinations (Facebook Pixel, Facebook Conversions, Facebook App Events): settings,
refusals, hashing, what Graph's answers mean, and the conformance cases without masking."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import codec
from engine.destinations import facebook
from engine.destinations.base import BadSettings, DestinationType, Judgement, Unsendable, Verdict
from engine.destinations.facebook_app_events import FACEBOOK_APP_EVENTS
from engine.destinations.facebook_conversions import FACEBOOK_CONVERSIONS
from engine.destinations.facebook_pixel import FACEBOOK_PIXEL

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "EAAB-secret-token-0123456789"
PIXEL = FACEBOOK_PIXEL.parse_settings({"pixelId": "123", "accessToken": TOKEN})
CAPI = FACEBOOK_CONVERSIONS.parse_settings({"datasetId": "456", "accessToken": TOKEN})
APP = FACEBOOK_APP_EVENTS.parse_settings({"appID": "789", "accessToken": TOKEN})
DESTINATIONS = [(FACEBOOK_PIXEL, PIXEL), (FACEBOOK_CONVERSIONS, CAPI), (FACEBOOK_APP_EVENTS, APP)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1",
            "timestamp": stamp(NOW - timedelta(hours=1)), **fields}  # fmt: skip


def deep(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {"a": 1}
    for _ in range(levels):
        nested = {"a": nested}
    return nested


def server_event(dest: DestinationType, settings: Any, event: dict[str, Any]) -> dict[str, Any]:
    [request] = dest.map(codec.decode(json.dumps(event)), settings, NOW)
    [made] = json.loads(request.body["data"])
    return made  # type: ignore[no-any-return]


def app_form(event: dict[str, Any], settings: Any = APP) -> dict[str, Any]:
    [request] = FACEBOOK_APP_EVENTS.map(codec.decode(json.dumps(event)), settings, NOW)
    return request.body  # type: ignore[no-any-return]


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "config", "message"),
    [
        (FACEBOOK_PIXEL, {"accessToken": TOKEN}, "pixelId"),
        (FACEBOOK_PIXEL, {"pixelId": "1/../2", "accessToken": TOKEN}, "pixelId '1/../2' must"),
        (FACEBOOK_PIXEL, {"pixelId": "1?x=2", "accessToken": TOKEN}, "must be an id"),
        (FACEBOOK_PIXEL, {"pixelId": "12\n", "accessToken": TOKEN}, "must be an id"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN + "\n"}, "no spaces"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": ""}, "accessToken must not be empty"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": "EAAB secret"}, "no spaces"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN, "advancedMapping": "yes"},
         "advancedMapping"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN,
                          "valueFieldIdentifier": "properties.total"}, "valueFieldIdentifier"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN, "testDestination": True},
         "testEventCode"),
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN, "endpoint": "ftp://x"},
         "not an http(s) URL"),
        (FACEBOOK_CONVERSIONS, {"accessToken": TOKEN}, "datasetId"),
        (FACEBOOK_CONVERSIONS, {"datasetId": "1", "accessToken": TOKEN, "actionSource": "web"},
         "actionSource must be one of"),
        (FACEBOOK_CONVERSIONS, {"datasetId": "1", "accessToken": TOKEN,
                                "endpoint": "https://x/?a=1"}, "without query"),
        (FACEBOOK_APP_EVENTS, {}, "appID"),
        (FACEBOOK_APP_EVENTS, {"appID": "a b"}, "appID 'a b' must"),
        (FACEBOOK_APP_EVENTS, {"appID": "1", "accessToken": "a\nb"}, "no spaces"),
    ],
)  # fmt: skip
def test_bad_settings_say_what_is_wrong_without_the_token(
    dest: DestinationType, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as refused:
        dest.parse_settings(config)
    assert str(refused.value).startswith(dest.title)
    assert "secret" not in str(refused.value) and TOKEN not in str(refused.value)


def test_settings_take_rudderstack_configs_with_empty_and_unknown_keys() -> None:
    settings = FACEBOOK_CONVERSIONS.parse_settings(
        {"datasetId": "1", "accessToken": TOKEN, "actionSource": "", "testEventCode": "",
         "eventDelivery": False, "blacklistedEvents": [{"eventName": ""}]}
    )  # fmt: skip
    assert settings.actionSource is None
    pixel = FACEBOOK_PIXEL.parse_settings(
        {"pixelId": "1", "accessToken": TOKEN, "valueFieldIdentifier": "properties.value",
         "whitelistPiiProperties": [{"whitelistPiiProperties": ""}],
         "eventsToEvents": [{"from": "", "to": ""}]}
    )  # fmt: skip
    assert pixel.valueFieldIdentifier == "properties.value"


def test_the_token_is_a_secret_of_every_meta_destination() -> None:
    for dest, _ in DESTINATIONS:
        assert dest.secrets({"accessToken": TOKEN, "pixelId": "1", "appID": "2"}) == [TOKEN]


# --- requests -------------------------------------------------------------------------------


def test_one_event_per_request_with_the_token_in_the_query_and_data_as_json_text() -> None:
    for dest, settings in DESTINATIONS[:2]:
        assert dest.combine is None and dest.batch_size == 1
        [request] = dest.map(track(), settings, NOW)
        assert request.method == "POST" and request.body_format == "form"
        assert request.params == {"access_token": TOKEN}
        assert request.headers == {}  # (the sender labels form bodies)
        assert TOKEN not in json.dumps(request.body)
        assert set(request.body) == {"data"} and isinstance(request.body["data"], str)
    [pixel] = FACEBOOK_PIXEL.map(track(), PIXEL, NOW)
    assert pixel.url == "https://graph.facebook.com/v25.0/123/events"


@pytest.mark.parametrize(
    ("dest", "config", "url"),
    [
        (FACEBOOK_PIXEL, {"pixelId": "1", "accessToken": TOKEN},
         "https://proxy.example/meta/v25.0/1/events"),
        (FACEBOOK_CONVERSIONS, {"datasetId": "2", "accessToken": TOKEN},
         "https://proxy.example/meta/v25.0/2/events"),
        (FACEBOOK_APP_EVENTS, {"appID": "3"}, "https://proxy.example/meta/v25.0/3/activities"),
    ],
)  # fmt: skip
def test_the_endpoint_setting_replaces_the_host_and_keeps_the_paths(
    dest: DestinationType, config: dict[str, Any], url: str
) -> None:
    settings = dest.parse_settings({**config, "endpoint": "https://proxy.example/meta/"})
    [request] = dest.map(track(anonymousId="a"), settings, NOW)
    assert request.url == url


def test_test_event_code_is_sent_only_for_a_test_destination() -> None:
    config = {"pixelId": "1", "accessToken": TOKEN, "testEventCode": "TEST123"}
    [live] = FACEBOOK_PIXEL.map(track(), FACEBOOK_PIXEL.parse_settings(config), NOW)
    assert "test_event_code" not in live.body
    testing = FACEBOOK_PIXEL.parse_settings({**config, "testDestination": True})
    [test] = FACEBOOK_PIXEL.map(track(), testing, NOW)
    assert test.body["test_event_code"] == "TEST123"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (track(properties={"event_id": "p"}, context={"traits": {"event_id": "t"}}), "p"),
        (track(context={"traits": {"event_id": 42}}), "42"),
        (track(), "m1"),
        (track(messageId=None), None),
    ],
)
def test_event_id_for_dedup_with_the_browser_pixel(
    event: dict[str, Any], expected: str | None
) -> None:
    assert server_event(FACEBOOK_PIXEL, PIXEL, event).get("event_id") == expected


# --- customer information -------------------------------------------------------------------


def test_customer_information_is_normalised_then_hashed() -> None:
    traits = {
        "email": "  Jane.Doe@Example.COM ", "phone": "+44 (0)20 7946-0958", "firstName": " Zoë ",
        "last_name": "O'Neil", "gender": "Female", "birthday": "1990-05-12T00:00:00Z",
        "address": {"city": "New York", "state": "NY", "postalCode": "10001-1234",
                    "country": "US"},
    }  # fmt: skip
    made = server_event(FACEBOOK_PIXEL, PIXEL, track(context={"traits": traits}))
    assert made["user_data"] == {
        "em": sha256("jane.doe@example.com"),
        "ph": sha256("4402079460958"),
        "fn": sha256("zoë"),
        "ln": sha256("o'neil"),
        "ge": sha256("f"),
        "db": sha256("19900512"),
        "ct": sha256("newyork"),
        "st": sha256("ny"),
        "zp": sha256("10001"),
        "country": sha256("us"),
        "external_id": sha256("u1"),
    }


@pytest.mark.parametrize(
    "traits",
    [{"gender": "other"}, {"gender": True}, {"birthday": "12/05/1990"}, {"birthday": "1990-02-30"},
     {"phone": "n/a"}, {"email": "   "}, {"email": {"a": 1}}, {"address": "Main St"}],
)  # fmt: skip
def test_values_meta_cannot_match_are_left_out(traits: dict[str, Any]) -> None:
    user = server_event(FACEBOOK_PIXEL, PIXEL, track(context={"traits": traits}))["user_data"]
    assert set(user) == {"external_id"}


def test_values_the_event_says_are_hashed_are_sent_as_they_are() -> None:
    digest = sha256("jane@example.com")
    event = track(
        context={"traits": {"email": digest, "phone": digest.upper()}},
        integrations={"Facebook Pixel": {"hashed": True}},
    )
    user = server_event(FACEBOOK_PIXEL, PIXEL, event)["user_data"]
    assert user == {"em": digest, "ph": digest.upper(), "external_id": "u1"}
    form = app_form({**event, "integrations": {"FB": {"hashed": True}}})
    assert form["ud[em]"] == digest


def test_external_id_is_the_user_id_else_the_anonymous_id_unless_removed() -> None:
    anonymous = track(userId=None, anonymousId="a1")
    assert server_event(FACEBOOK_PIXEL, PIXEL, anonymous)["user_data"]["external_id"] == sha256(
        "a1"
    )
    removed = FACEBOOK_CONVERSIONS.parse_settings(
        {"datasetId": "1", "accessToken": TOKEN, "removeExternalId": True}
    )
    assert "external_id" not in server_event(FACEBOOK_CONVERSIONS, removed, track())["user_data"]


def test_browser_and_device_ids_travel_unhashed_and_bad_ips_are_dropped() -> None:
    event = track(
        context={"ip": "2001:db8::1", "userAgent": "UA/1", "fbp": "fb.1.2.3",
                 "device": {"advertisingId": "ad-1"}},
        properties={"fbc": "fb.1.2.abc"},
    )  # fmt: skip
    user = server_event(FACEBOOK_CONVERSIONS, CAPI, event)["user_data"]
    assert {k: user[k] for k in ("client_ip_address", "client_user_agent", "fbp", "fbc",
                                 "madid")} == {"client_ip_address": "2001:db8::1",
                                               "client_user_agent": "UA/1", "fbp": "fb.1.2.3",
                                               "fbc": "fb.1.2.abc", "madid": "ad-1"}  # fmt: skip
    forged = track(context={"ip": "1.2.3.4\r\nX-Evil: 1"})
    assert "client_ip_address" not in server_event(FACEBOOK_PIXEL, PIXEL, forged)["user_data"]
    [request] = FACEBOOK_APP_EVENTS.map({**forged, "anonymousId": "a"}, APP, NOW)
    assert "X-Forwarded-For" not in request.headers


# --- time and action source -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "source", "accepted"),
    [
        (timedelta(days=7) - timedelta(seconds=1), "website", True),
        (timedelta(days=7, seconds=1), "website", False),
        (timedelta(days=30), "physical_store", True),
        (timedelta(days=63), "physical_store", False),
        (-timedelta(seconds=59), "website", True),
        (-timedelta(seconds=61), "website", False),
    ],
)
def test_event_time_must_be_in_the_window_meta_accepts_measured_from_now(
    age: timedelta, source: str, accepted: bool
) -> None:
    event = track(timestamp=stamp(NOW - age), properties={"action_source": source})
    for dest, settings in DESTINATIONS[:2]:
        if accepted:
            made = server_event(dest, settings, event)
            assert made["event_time"] == int((NOW - age).timestamp())
        else:
            with pytest.raises(Unsendable, match=r"up to (7|62) days old"):
                dest.map(event, settings, NOW)


def test_event_time_falls_back_to_received_at_then_now() -> None:
    received = stamp(NOW - timedelta(minutes=3))
    event = track(timestamp=None, originalTimestamp="garbage", receivedAt=received)
    assert server_event(FACEBOOK_PIXEL, PIXEL, event)["event_time"] == int(
        (NOW - timedelta(minutes=3)).timestamp()
    )
    assert server_event(FACEBOOK_PIXEL, PIXEL, track(timestamp=None))["event_time"] == int(
        NOW.timestamp()
    )


@pytest.mark.parametrize(
    ("event", "configured", "expected"),
    [
        (track(channel="web"), None, "website"),
        (track(channel="mobile"), None, "app"),
        (track(channel="server"), None, "other"),
        (track(), None, "other"),
        (track(channel="web"), "email", "email"),
        (track(channel="web", properties={"action_source": "chat"}), "email", "chat"),
        (track(context={"traits": {"action_source": "phone_call"}}), None, "phone_call"),
    ],
)
def test_action_source(event: dict[str, Any], configured: str | None, expected: str) -> None:
    config = {"datasetId": "1", "accessToken": TOKEN, "actionSource": configured}
    settings = FACEBOOK_CONVERSIONS.parse_settings(config)
    assert server_event(FACEBOOK_CONVERSIONS, settings, event)["action_source"] == expected


def test_app_events_through_the_conversions_api_carry_app_data() -> None:
    event = track(
        channel="mobile",
        context={"os": {"name": "iOS", "version": "17.2"}, "device": {"adTrackingEnabled": True,
                 "model": "iPhone15,2"}, "app": {"namespace": "com.shop", "version": "2.1"}},
    )  # fmt: skip
    app_data = server_event(FACEBOOK_CONVERSIONS, CAPI, event)["app_data"]
    assert app_data["advertiser_tracking_enabled"] == 1
    assert app_data["extinfo"][:6] == ["i2", "com.shop", "2.1", "", "17.2", "iPhone15,2"]
    assert len(app_data["extinfo"]) == 16 and all(isinstance(v, str) for v in app_data["extinfo"])
    assert "app_data" not in server_event(FACEBOOK_CONVERSIONS, CAPI, track(channel="web"))


def test_data_processing_options_only_with_limited_data_use() -> None:
    event = track(context={"dataProcessingOptions": [["LDU"], 1, 1000]})
    assert "data_processing_options" not in server_event(FACEBOOK_PIXEL, PIXEL, event)
    limited = FACEBOOK_PIXEL.parse_settings(
        {"pixelId": "1", "accessToken": TOKEN, "limitedDataUSage": True}
    )
    made = server_event(FACEBOOK_PIXEL, limited, event)
    assert made["data_processing_options"] == ["LDU"]
    assert made["data_processing_options_country"] == 1
    assert made["data_processing_options_state"] == 1000


# --- names and custom data ------------------------------------------------------------------


def test_personal_data_stays_out_of_custom_data_unless_whitelisted() -> None:
    props = {"email": "a@b.c", "Phone": "1", "zip": "1", "plan": "pro", "ssn": "123",
             "card": "4111"}  # fmt: skip
    custom = server_event(FACEBOOK_CONVERSIONS, CAPI, track(properties=props))["custom_data"]
    assert custom == {"plan": "pro", "ssn": "123", "card": "4111"}
    settings = FACEBOOK_PIXEL.parse_settings({
        "pixelId": "1", "accessToken": TOKEN,
        "whitelistPiiProperties": [{"whitelistPiiProperties": "email"}],
        "blacklistPiiProperties": [
            {"blacklistPiiProperties": "ssn", "blacklistPiiHash": True},
            {"blacklistPiiProperties": "card", "blacklistPiiHash": False},
        ],
    })  # fmt: skip
    custom = server_event(FACEBOOK_PIXEL, settings, track(properties=props))["custom_data"]
    assert custom == {"email": "a@b.c", "plan": "pro", "ssn": sha256("123")}


def test_pixel_flattens_custom_data_and_values_revenue() -> None:
    props = {"revenue": "12.345", "plan": {"tier": "pro", "seats": [1, 2]}}
    custom = server_event(FACEBOOK_PIXEL, PIXEL, track(properties=props))["custom_data"]
    assert custom == {"revenue": "12.345", "plan.tier": "pro", "plan.seats[0]": 1,
                      "plan.seats[1]": 2, "value": 12.35}  # fmt: skip
    custom = server_event(FACEBOOK_CONVERSIONS, CAPI, track(properties=props))["custom_data"]
    assert custom["plan"] == {"tier": "pro", "seats": [1, 2]}
    assert custom["value"] == 12.35 and custom["currency"] == "USD"


def test_events_to_events_and_category_to_content() -> None:
    settings = FACEBOOK_PIXEL.parse_settings({
        "pixelId": "1", "accessToken": TOKEN,
        "eventsToEvents": [{"from": "Basket Filled", "to": "AddToCart"},
                           {"from": "Quote Requested", "to": "Lead"}],
        "categoryToContent": [{"from": "Shoes", "to": "product_group"}],
    })  # fmt: skip
    props = {"product_id": "p1", "price": 5, "category": "shoes", "currency": "EUR"}
    made = server_event(FACEBOOK_PIXEL, settings, track(event="basket filled", properties=props))
    assert made["event_name"] == "AddToCart"
    custom = made["custom_data"]
    assert custom["content_ids"] == ["p1"] and custom["content_type"] == "product_group"
    assert custom["value"] == 5 and custom["currency"] == "EUR"
    lead = server_event(FACEBOOK_PIXEL, settings, track(event="Quote Requested"))
    assert lead["event_name"] == "Lead" and "custom_data" not in lead


def test_conversions_has_the_wishlist_and_payment_events_and_page_view() -> None:
    wish = server_event(FACEBOOK_CONVERSIONS, CAPI, track(event="Product Added to Wishlist",
                                                          properties={"sku": "s1"}))  # fmt: skip
    assert wish["event_name"] == "AddToWishlist" and wish["custom_data"]["content_ids"] == ["s1"]
    pay = server_event(FACEBOOK_CONVERSIONS, CAPI, track(event="Payment Info Entered"))
    assert pay["event_name"] == "AddPaymentInfo"
    page = track(type="page", name="Home", properties={"url": "https://x/"})
    made = server_event(FACEBOOK_CONVERSIONS, CAPI, page)
    assert made["event_name"] == "PageView" and made["event_source_url"] == "https://x/"
    assert server_event(FACEBOOK_PIXEL, PIXEL, {**page, "name": None})["event_name"] == (
        "Viewed a page"
    )


@pytest.mark.parametrize(
    ("dest", "settings", "event", "message"),
    [
        (FACEBOOK_PIXEL, PIXEL, track(event=""), "needs a name"),
        (FACEBOOK_PIXEL, PIXEL, track(event=["x"]), "needs a name"),
        (FACEBOOK_PIXEL, PIXEL, {**track(), "type": "identify"}, "advancedMapping"),
        (FACEBOOK_PIXEL, FACEBOOK_PIXEL.parse_settings(
            {"pixelId": "1", "accessToken": TOKEN, "standardPageCall": True}),
         {**track(), "type": "page"}, "needs properties"),
        (FACEBOOK_PIXEL, PIXEL, {**track(), "type": "alias"}, "does not take 'alias'"),
        (FACEBOOK_PIXEL, PIXEL, track(properties={"action_source": "web"}), "action_source"),
        (FACEBOOK_PIXEL, PIXEL, track(event="Products Searched",
                                      properties={"query": {"q": 1}}), "properties.query"),
        (FACEBOOK_CONVERSIONS, CAPI, {**track(), "type": "identify"}, "does not take"),
        (FACEBOOK_APP_EVENTS, APP, track(event="bad.name", anonymousId="a"), "not one Meta"),
        (FACEBOOK_APP_EVENTS, APP, track(event="x" * 41, anonymousId="a"), "not one Meta"),
        (FACEBOOK_APP_EVENTS, APP, track(event="Signed\nUp", anonymousId="a"), "not one Meta"),
        (FACEBOOK_PIXEL, PIXEL, track(properties=deep(5000)), "nested too deeply"),
        (FACEBOOK_APP_EVENTS, APP, track(anonymousId="a", properties={"a.b": 1}),
         "property name 'a.b'"),
        (FACEBOOK_APP_EVENTS, APP, track(anonymousId="a", properties={"revenue": 5}),
         "needs properties.currency"),
        (FACEBOOK_APP_EVENTS, APP, track(anonymousId="a", properties={"revenue": "lots",
                                                                      "currency": "EUR"}),
         "must be a number"),
        (FACEBOOK_APP_EVENTS, APP, track(userId="u"), "advertising id"),
        (FACEBOOK_APP_EVENTS, APP, {**track(), "type": "identify", "anonymousId": "a"},
         "does not take"),
    ],
)  # fmt: skip
def test_refusals_are_clear_and_never_show_the_token(
    dest: DestinationType, settings: Any, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=re.escape(message)) as refused:
        dest.map(event, settings, NOW)
    assert TOKEN not in str(refused.value)


def test_identify_with_advanced_mapping_sends_user_data_only() -> None:
    settings = FACEBOOK_PIXEL.parse_settings(
        {"pixelId": "1", "accessToken": TOKEN, "advancedMapping": True}
    )
    event = {**track(), "type": "identify", "traits": {"email": "a@b.c"}}
    made = server_event(FACEBOOK_PIXEL, settings, event)
    assert made["event_name"] == "identify" and "custom_data" not in made
    assert made["user_data"]["em"] == sha256("a@b.c")


def test_group_and_alias_are_not_taken_by_the_conversions_destinations() -> None:
    assert FACEBOOK_PIXEL.supported_types == {"track", "identify", "page", "screen"}
    assert FACEBOOK_CONVERSIONS.supported_types == {"track", "page", "screen"}
    assert FACEBOOK_APP_EVENTS.supported_types == {"track", "screen"}


# --- App Events -----------------------------------------------------------------------------


def test_app_events_form_fields() -> None:
    event = track(
        event="Order Completed", anonymousId="anon",
        context={"ip": "198.51.100.2", "device": {"advertisingId": "idfa-1", "type": "ios",
                 "adTrackingEnabled": True}, "traits": {"email": "A@B.C"}},
        properties={"revenue": 9.99, "currency": "EUR", "name": "Basket",
                    "products": [{"product_id": 7}, {"sku": "no id"}], "coupon": {"code": "X"}},
    )  # fmt: skip
    [request] = FACEBOOK_APP_EVENTS.map(codec.decode(json.dumps(event)), APP, NOW)
    assert request.url == "https://graph.facebook.com/v25.0/789/activities"
    assert request.params == {"access_token": TOKEN}
    assert request.headers["X-Forwarded-For"] == "198.51.100.2"
    form = request.body
    assert form["event"] == "CUSTOM_APP_EVENTS" and form["advertiser_id"] == "idfa-1"
    assert form["ud[em]"] == sha256("a@b.c") and form["app_user_id"] == "u1"
    assert "anon_id" not in form  # the advertising id identifies the device
    assert form["advertiser_tracking_enabled"] == form["application_tracking_enabled"] == "1"
    assert json.loads(form["extinfo"])[0] == "i2"
    [custom] = json.loads(form["custom_events"])
    assert custom == {
        "_eventName": "fb_mobile_purchase",
        "_logTime": int((NOW - timedelta(hours=1)).timestamp() * 1000),
        "_valueToSum": 9.99, "fb_currency": "EUR", "fb_description": "Basket",
        "fb_content_id": ["7"], "coupon": '{"code":"X"}',
    }  # fmt: skip
    assert all(isinstance(v, str) for v in form.values())


def test_app_events_install_screen_and_anonymous_devices() -> None:
    install = app_form(track(event="Application Installed", anonymousId="anon", userId=None))
    assert install["event"] == "MOBILE_APP_INSTALL" and "custom_events" not in install
    assert install["anon_id"] == "anon"
    screen = app_form({**track(), "type": "screen", "name": "Home", "anonymousId": "a"})
    assert json.loads(screen["custom_events"])[0]["_eventName"] == "Viewed Home Screen"
    odd = app_form({**track(), "type": "screen", "name": "Main.1", "anonymousId": "a"})
    assert json.loads(odd["custom_events"])[0]["_eventName"] == "Viewed Screen"
    without_token = FACEBOOK_APP_EVENTS.parse_settings({"appID": "789"})
    [request] = FACEBOOK_APP_EVENTS.map(track(anonymousId="a"), without_token, NOW)
    assert request.params == {}


# --- hostile input --------------------------------------------------------------------------

HOSTILE: list[dict[str, Any]] = [
    {},
    {"type": "track"},
    {"type": ["track"]},
    {"type": "track", "event": "E", "properties": [1, 2], "context": "x", "traits": 5},
    {"type": "track", "event": "Order Completed",
     "properties": {"products": {"a": 1}, "revenue": {"x": 1}, "quantity": "many",
                    "category": 5, "currency": None}},
    {"type": "track", "event": "Product List Viewed",
     "properties": {"products": [1, None, {"product_id": {"x": 1}}, {"id": True}]}},
    {"type": "track", "event": "E", "timestamp": 12, "originalTimestamp": "2026-99-99",
     "context": {"traits": {"email": 5, "address": [1]}, "device": "phone", "os": 3,
                 "screen": {"density": "dense", "width": {}}, "dataProcessingOptions": "LDU"}},
    {"type": "page", "name": {"x": 1}, "properties": None, "channel": 7},
    {"type": "screen", "properties": {"name": ["a"]}, "messageId": {"id": 1}},
    {"type": "track", "event": "E", "integrations": {"FB": "yes", "Facebook Pixel": [1]}},
]  # fmt: skip


@pytest.mark.parametrize("event", HOSTILE)
@pytest.mark.parametrize(("dest", "settings"), DESTINATIONS)
def test_hostile_events_are_sent_or_refused_never_crash(
    dest: DestinationType, settings: Any, event: dict[str, Any]
) -> None:
    event = {"userId": "u", "anonymousId": "a", **event}
    try:
        requests = dest.map(codec.decode(json.dumps(event)), settings, NOW)
    except Unsendable:
        return
    for request in requests:
        codec.encode(request)
        assert all(isinstance(v, str) for v in request.body.values())


# --- what Graph's answers mean --------------------------------------------------------------


def graph_error(code: Any, status: int = 400, **extra: Any) -> tuple[int, bytes]:
    error = {"message": f"(#{code}) Something", "type": "OAuthException", "code": code,
             "fbtrace_id": "AbC", **extra}  # fmt: skip
    return status, json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (graph_error(4), Verdict.RETRY),
        (graph_error(17), Verdict.RETRY),
        (graph_error(80003), Verdict.RETRY),
        (graph_error(613), Verdict.RETRY),
        (graph_error(1, 500), Verdict.RETRY),
        (graph_error(2, 503), Verdict.RETRY),
        (graph_error(341), Verdict.RETRY),
        (graph_error(368), Verdict.RETRY),
        (graph_error(5000), Verdict.RETRY),
        (graph_error(21009), Verdict.RETRY),
        (graph_error(190), Verdict.ABORT),
        (graph_error(190, 401, error_subcode=463), Verdict.ABORT),
        (graph_error(100, error_subcode=2804003), Verdict.ABORT),
        (graph_error(3), Verdict.ABORT),
        (graph_error(294), Verdict.ABORT),
        (graph_error(105), Verdict.ABORT),
        (graph_error(200, 403), Verdict.ABORT),
        (graph_error(100, 500), Verdict.ABORT),  # permanent whatever the status
        (graph_error("17"), Verdict.RETRY),  # a code as text
        (graph_error(99999), Verdict.ABORT),  # unknown code: by status
        (graph_error(99999, 502), Verdict.RETRY),
        (graph_error(99999, is_transient=True), Verdict.RETRY),
        (graph_error(17, 200), Verdict.RETRY),  # an error object is no success
    ],
)
def test_graph_errors_are_judged_by_their_code(answer: tuple[int, bytes], verdict: Verdict) -> None:
    status, body = answer
    judged = facebook.classify(status, body, 1)
    assert isinstance(judged, list) and len(judged) == 1
    [judgement] = judged
    assert judgement.verdict is verdict
    assert judgement.reason is not None and "OAuthException: (#" in judgement.reason


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b'{"events_received": 1, "messages": [], "fbtrace_id": "AbC"}', Verdict.DELIVERED),
        (200, b'{"success": true}', Verdict.DELIVERED),
        (200, b"", Verdict.DELIVERED),
        (502, b"<html><body>Bad Gateway</body></html>", Verdict.RETRY),
        (404, b"<!DOCTYPE html><title>Not Found</title>", Verdict.ABORT),
        (429, b"slow down", Verdict.RETRY),
        (400, b"\xff\xfe garbage", Verdict.ABORT),
        (500, b'{"error": "oops"}', Verdict.RETRY),
        (400, b"[1, 2]", Verdict.ABORT),
        (503, b'{"error": {}}', Verdict.RETRY),
    ],
)
def test_other_answers_are_judged_by_their_status(
    status: int, body: bytes, verdict: Verdict
) -> None:
    judged = facebook.classify(status, body, 1)
    found = judged if isinstance(judged, Verdict) else judged[0].verdict
    assert found is verdict


def test_the_reason_is_meta_s_explanation() -> None:
    body = {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                      "error_subcode": 2804003, "error_user_title": "Event Timestamp Too Old",
                      "error_user_msg": "The timestamp for this event is too far in the past.",
                      "fbtrace_id": "AbC"}}  # fmt: skip
    judged = facebook.classify(400, json.dumps(body).encode(), 1)
    assert judged == [
        Judgement(
            Verdict.ABORT,
            "OAuthException: Invalid parameter — The timestamp for this event is too far in "
            "the past. (code 100, subcode 2804003)",
        )
    ]
