"""The Amplitude mapping: settings it refuses, events it cannot send, what it sends, how its
requests combine, and what Amplitude's answers mean."""

import copy
import json
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import codec
from engine.control import preview
from engine.destinations.amplitude import AMPLITUDE
from engine.destinations.base import (
    BadSettings,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    decode_request,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "amp-secret-key-93f1"
CONFIG: dict[str, Any] = {"apiKey": KEY}
SETTINGS = AMPLITUDE.parse_settings(CONFIG)


def mapped(event: dict[str, Any] | str, config: dict[str, Any] | None = None) -> list[Request]:
    """The requests for an event (an object, or JSON text where numbers must keep their text)."""
    settings = SETTINGS if config is None else AMPLITUDE.parse_settings({**CONFIG, **config})
    text = event if isinstance(event, str) else json.dumps(event)
    return AMPLITUDE.map(codec.decode(text), settings, NOW)


def one_event(event: dict[str, Any] | str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    [request] = mapped(event, config)
    [made] = request.body["events"]
    return dict(made)


def wire(value: Any) -> Any:
    return json.loads(codec.encode(value))


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "apiKey"),
        ({"apiKey": ""}, "apiKey is empty"),
        ({"apiKey": "  "}, "apiKey is empty"),
        ({"apiKey": "abc def"}, "apiKey contains spaces"),
        ({"apiKey": 12345}, "apiKey"),
        ({**CONFIG, "residencyServer": "US-East"}, "residencyServer must be"),
        ({**CONFIG, "endpoint": "ftp://example.com"}, "not an http(s) URL"),
        ({**CONFIG, "endpoint": "https://example.com/?a=1"}, "without query"),
        ({**CONFIG, "trackProductsOnce": "yes"}, "trackProductsOnce"),
        ({**CONFIG, "traitsToIncrement": ["age"]}, "traitsToIncrement"),
        ({**CONFIG, "useUserDefinedPageEventName": True}, "userProvidedPageEventString"),
        ({**CONFIG, "useUserDefinedScreenEventName": True}, "userProvidedScreenEventString"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as caught:
        AMPLITUDE.parse_settings(config)
    assert str(caught.value).startswith("Amplitude settings: ")


def test_a_bad_key_is_not_repeated_in_the_error() -> None:
    with pytest.raises(BadSettings) as caught:
        AMPLITUDE.parse_settings({"apiKey": "secret with spaces"})
    assert "secret" not in str(caught.value).replace("apiKey contains spaces", "")


def test_rudderstack_configs_import_with_their_other_keys() -> None:
    settings = AMPLITUDE.parse_settings({
        **CONFIG, "apiSecret": "s3cr3t", "residencyServer": "EU", "trackAllPages": False,
        "eventUploadThreshold": "30", "traitsToIncrement": [{"traits": ""}], "versionName": "",
    })  # fmt: skip
    [request] = AMPLITUDE.map({"type": "track", "userId": "u", "event": "E"}, settings, NOW)
    assert request.url == "https://api.eu.amplitude.com/2/httpapi"
    assert AMPLITUDE.secrets({**CONFIG, "apiSecret": "s3cr3t"}) == [KEY, "s3cr3t"]


@pytest.mark.parametrize("residency", ["standard", "EU"])
def test_endpoint_replaces_the_host_and_keeps_the_paths(residency: str) -> None:
    config = {"endpoint": "http://127.0.0.1:9999/proxy/", "residencyServer": residency,
              "groupTypeTrait": "kind", "groupValueTrait": "name"}  # fmt: skip
    group = {"type": "group", "userId": "u", "traits": {"kind": "Org", "name": "Acme"}}
    alias = {"type": "alias", "userId": "u", "previousId": "p"}
    urls = [r.url for r in mapped(group, config) + mapped(alias, config)]
    assert urls == [
        "http://127.0.0.1:9999/proxy/2/httpapi",
        "http://127.0.0.1:9999/proxy/groupidentify",
        "http://127.0.0.1:9999/proxy/usermap",
    ]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "track", "event": "E"}, "userId or an anonymousId"),
        ({"type": "track", "userId": "", "anonymousId": None, "event": "E"}, "userId or an"),
        ({"type": "track", "userId": {"id": 1}, "event": "E"}, "userId or an anonymousId"),
        ({"type": "track", "userId": "u"}, "needs an event name"),
        ({"type": "track", "userId": "u", "event": ["E"]}, "needs an event name"),
        ({"type": "boom", "userId": "u"}, "not 'boom'"),
        ({"userId": "u"}, "without a type"),
        ({"type": "group", "userId": "u", "traits": {"a": 1}}, "groupTypeTrait"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "alias", "previousId": "p"}, "needs a userId"),
        ({"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 1_000_001}},
         "at most 1000000 bytes"),
    ],
)  # fmt: skip
def test_an_event_amplitude_cannot_take_is_refused(event: dict[str, Any], message: str) -> None:
    with pytest.raises(Unsendable, match=re.escape(message)) as caught:
        mapped(event)
    assert KEY not in str(caught.value)


def test_a_group_identify_form_too_large_once_urlencoded_is_refused() -> None:
    traits = {"kind": "Org", "name": "Acme", "motto": "é" * 200_000}  # 400 kB as JSON, 1.2 MB sent
    with pytest.raises(Unsendable, match="at most 1000000 bytes"):
        mapped({"type": "group", "userId": "u", "traits": traits},
               {"groupTypeTrait": "kind", "groupValueTrait": "name"})  # fmt: skip


def test_garbage_in_any_field_is_refused_or_mapped_never_an_error() -> None:
    rng = random.Random(3)
    junk: list[Any] = [None, "", "x", 0, -1, 2**80, 1.5, True, [], [1, "a"], {}, {"a": {"b": []}}]
    fields = ["type", "userId", "anonymousId", "event", "name", "properties", "traits",
              "context", "timestamp", "messageId", "session_id", "previousId", "groupId",
              "integrations", "channel"]  # fmt: skip
    context_fields = ["traits", "page", "campaign", "os", "device", "app", "location",
                      "network", "locale", "ip", "userAgent", "sessionId"]  # fmt: skip
    config = {"groupTypeTrait": "kind", "groupValueTrait": "name", "trackProductsOnce": False,
              "trackRevenuePerProduct": True, "traitsToIncrement": [{"traits": "n"}]}  # fmt: skip
    settings = AMPLITUDE.parse_settings({**CONFIG, **config})
    for _ in range(3000):
        event: dict[str, Any] = {
            "type": rng.choice(["track", "page", "screen", "identify", "group", "alias"]),
            "userId": "u", "event": "E", "previousId": "p",
            "traits": {"kind": "K", "name": "N"},
            "properties": {"revenue": 3, "products": [{"price": 1}, "x", {"quantity": "2"}]},
            "context": {},
        }  # fmt: skip
        for _ in range(3):
            event[rng.choice(fields)] = copy.deepcopy(rng.choice(junk))
            if isinstance(event.get("context"), dict):
                event["context"][rng.choice(context_fields)] = copy.deepcopy(rng.choice(junk))
        event = codec.decode(json.dumps(event))
        try:
            requests = AMPLITUDE.map(event, settings, NOW)
        except Unsendable:
            continue
        for request in requests:
            codec.encode(request)


# --- what is sent ---------------------------------------------------------------------------


def test_an_event_carries_its_ids_time_session_and_context() -> None:
    made = one_event("""{
        "type": "track", "userId": 42, "anonymousId": "anon-1", "event": "Clicked",
        "messageId": "m-1", "timestamp": "2024-03-01T10:00:00.123+01:00",
        "session_id": "anon-1:1709283600", "request_ip": "5.6.7.8",
        "properties": {"price": 1.50, "big": 1e999},
        "context": {"locale": "de-DE", "app": {"name": "Shop", "version": 7},
                    "traits": {"email": "a@b.c", "city": "Berlin", "address": {"city": "B"}},
                    "location": {"region": "BE", "latitude": 52.50},
                    "campaign": {"name": "spring", "source": "news"}}
    }""")
    assert made["user_id"] == "42" and made["device_id"] == "anon-1"
    assert made["insert_id"] == "m-1" and made["time"] == 1709283600123
    assert made["session_id"] == 1709283600 and made["ip"] == "5.6.7.8"
    assert (made["language"], made["app_name"], made["app_version"]) == ("de-DE", "Shop", "7")
    assert (made["city"], made["region"]) == ("B", "BE")
    assert made["user_properties"] == {"email": "a@b.c", "utm_campaign": "spring",
                                       "utm_source": "news"}  # fmt: skip
    # Numbers go out as they came in, even those a float cannot hold.
    sent = codec.encode(made)
    assert b'"price":1.50' in sent and b'"big":1e999' in sent and b'"location_lat":52.50' in sent


@pytest.mark.parametrize(
    ("session", "expected"),
    [("abc:123", 123), ("123", 123), (77, 77), ("a-b-c", -1), (2**70, -1), ("1e999", -1)],
)
def test_session_id_is_the_number_after_the_last_colon(session: Any, expected: int) -> None:
    made = one_event({"type": "track", "userId": "u", "event": "E", "session_id": session})
    assert made["session_id"] == expected


def test_mobile_devices_get_their_advertising_ids() -> None:
    ios = {"device": {"type": "ios", "id": "vendor-id", "advertisingId": "ad-id"},
           "os": {"name": "iOS", "version": "17.2"}, "network": {"carrier": "Orange"}}  # fmt: skip
    made = one_event({"type": "track", "userId": "u", "event": "E", "context": ios})
    assert (made["idfa"], made["idfv"], made["platform"]) == ("ad-id", "vendor-id", "ios")
    assert made["carrier"] == "Orange" and "adid" not in made
    android = {"device": {"type": "Android", "advertisingId": "gaid"}}
    made = one_event({"type": "track", "userId": "u", "event": "E", "context": android})
    assert made["adid"] == "gaid" and "idfa" not in made


@pytest.mark.parametrize(
    ("agent", "browser", "version", "system"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
         "Firefox", "121.0", "Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.1", "iOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "Edge", "120.0.2210.91", "Windows"),
    ],
)  # fmt: skip
def test_web_events_read_browser_and_system_from_the_user_agent(
    agent: str, browser: str, version: str, system: str
) -> None:
    event = {"type": "page", "userId": "u", "channel": "web", "context": {"userAgent": agent}}
    made = one_event(event)
    assert (made["platform"], made["os_name"], made["os_version"]) == ("Web", browser, version)
    assert made["device_model"] == system


def test_page_and_screen_names_and_templates() -> None:
    page = {"type": "page", "userId": "u", "properties": {"category": "Docs"}}
    assert one_event(page)["event_type"] == "Viewed Docs Page"
    assert one_event({"type": "page", "userId": "u"})["event_type"] == "Viewed Page"
    config = {"useUserDefinedPageEventName": True,
              "userProvidedPageEventString": "{{ category }} - {{name}}"}  # fmt: skip
    made = one_event({**page, "name": "Intro"}, config)
    assert made["event_type"] == "Docs - Intro" and made["event_properties"]["name"] == "Intro"
    screen = {"type": "screen", "userId": "u", "name": "Cart"}
    config = {
        "useUserDefinedScreenEventName": True,
        "userProvidedScreenEventString": "Saw {{name}}",
    }
    assert one_event(screen, config)["event_type"] == "Saw Cart"


def test_identify_operations_move_traits_and_unset_fields() -> None:
    config = {
        "traitsToSetOnce": [{"traits": "first_seen"}],
        "traitsToAppend": [{"traits": "tags"}],
        "traitsToPrepend": [{"traits": "recent"}],
        "traitsToIncrement": [{"traits": "n"}],
    }
    made = one_event({
        "type": "identify", "userId": "u", "messageId": "m",
        "traits": {"first_seen": "2024", "tags": ["a"], "recent": "x", "n": 2, "plan": "pro",
                   "old": 1, "country": "FR"},
        "integrations": {"Amplitude": {"fieldsToUnset": ["old", "gone", 3]}},
    }, config)  # fmt: skip
    assert made["event_type"] == "$identify" and made["insert_id"] == "m"
    assert made["user_properties"] == {
        "plan": "pro", "$setOnce": {"first_seen": "2024"}, "$append": {"tags": ["a"]},
        "$prepend": {"recent": "x"}, "$add": {"n": 2}, "$unset": {"old": "-", "gone": "-"},
    }  # fmt: skip
    assert "event_properties" not in made


def test_group_types_can_come_from_the_event() -> None:
    event = {
        "type": "group",
        "anonymousId": "anon-1",
        "groupId": "g",
        "messageId": "m",
        "integrations": {"AM": {"groups": {"groupType": "Team", "groupValue": "Blue"}}},
    }
    [member] = mapped(event, {"groupTypeTrait": "kind", "groupValueTrait": "name"})
    [made] = member.body["events"]
    assert made["groups"] == {"Team": "Blue"} and made["user_properties"] == {"Team": "Blue"}
    assert "insert_id" not in made  # no traits: nothing for /groupidentify


def test_group_identify_and_user_map_are_forms_with_json_text() -> None:
    config = {"groupTypeTrait": "kind", "groupValueTrait": "name"}
    group = '{"type": "group", "userId": "u", "traits": {"kind": "Org", "name": 7, "size": 1.50}}'
    _, identify = mapped(group, config)
    assert identify.body_format == "form" and set(identify.body) == {"api_key", "identification"}
    assert identify.headers == {}  # (the sender labels form bodies)
    assert identify.body["identification"] == (
        '[{"group_type":"Org","group_value":"7","group_properties":'
        '{"kind":"Org","name":7,"size":1.50}}]'
    )
    unmap = {"type": "alias", "previousId": "p", "integrations": {"Amplitude": {"unmap": True}}}
    [request] = mapped(unmap)
    assert json.loads(request.body["mapping"]) == [{"user_id": "p", "unmap": True}]


ORDER = {
    "type": "track", "userId": "u", "event": "Order Completed", "messageId": "m",
    "properties": {"revenue": "30", "revenueType": "Sale", "order_id": "o1", "products": [
        {"product_id": "p1", "price": 10, "quantity": 2}, "junk", {"product_id": "p2", "price": 10},
    ]},
}  # fmt: skip


def test_revenue_per_product_moves_the_revenue_to_the_products() -> None:
    order, first, second = [
        r.body["events"][0]
        for r in mapped(ORDER, {"trackProductsOnce": True, "trackRevenuePerProduct": True})
    ]
    assert "revenue" not in order and order["event_properties"]["revenue"] == "30"
    assert len(order["event_properties"]["products"]) == 3  # sent once, with the order
    assert (first["insert_id"], second["insert_id"]) == ("m-1", "m-3")
    assert (first["price"], first["quantity"], first["productId"]) == (10, 2, "p1")
    assert (second["quantity"], second["revenueType"]) == (1, "Sale")
    assert first["event_properties"] == {} and first["event_type"] == "Product Purchased"


def test_revenue_on_the_order_with_products_sent_once() -> None:
    [request] = mapped(ORDER, {"trackProductsOnce": True})
    [order] = request.body["events"]
    assert (order["revenue"], order["price"], order["quantity"]) == (30, 30, 1)
    assert order["revenueType"] == "Sale" and "revenue" not in order["event_properties"]
    assert "products" in order["event_properties"]


def test_products_of_an_event_without_revenue_are_not_purchases() -> None:
    viewed = {"type": "track", "userId": "u", "event": "Product List Viewed",
              "properties": {"products": [{"product_id": "p1"}]}}  # fmt: skip
    [request] = mapped(viewed)
    [made] = request.body["events"]
    assert made["event_properties"] == viewed["properties"] and "revenue" not in made


def test_the_preview_masks_the_key() -> None:
    [request] = preview.of_type("amplitude", CONFIG, {"type": "track", "userId": "u", "event": "E"})
    assert request.body["api_key"] == "****" and KEY not in codec.encode(request).decode()


# --- batches --------------------------------------------------------------------------------


def stored(event: dict[str, Any] | str, config: dict[str, Any] | None = None) -> list[Request]:
    """The requests as the router reads them back from the jobs table."""
    return [decode_request(codec.encode(r)) for r in mapped(event, config)]


def test_events_requests_combine_into_one_http_v2_request_in_order() -> None:
    requests = [
        r
        for n in range(3)
        for r in stored(
            f'{{"type": "track", "userId": "u{n}", "event": "E", "messageId": "m{n}", '
            '"properties": {"v": 1.10}}'
        )
    ]
    keys = {AMPLITUDE.batch_key(r) for r in requests}
    assert len(keys) == 1 and None not in keys and KEY not in str(keys)
    assert AMPLITUDE.combine is not None
    combined = AMPLITUDE.combine(requests)
    assert combined.url == "https://api2.amplitude.com/2/httpapi"
    body = wire(combined.body)
    assert body["api_key"] == KEY and body["options"] == {"min_id_length": 1}
    assert [e["insert_id"] for e in body["events"]] == ["m0", "m1", "m2"]
    assert b'"v":1.10' in codec.encode(combined.body)
    [alone] = stored({"type": "track", "userId": "u", "event": "E"})
    assert wire(AMPLITUDE.combine([alone]).body) == wire(alone.body)


def test_form_calls_and_other_projects_never_combine() -> None:
    config = {"groupTypeTrait": "kind", "groupValueTrait": "name"}
    group = {"type": "group", "userId": "u", "traits": {"kind": "Org", "name": "Acme"}}
    member, identify = stored(group, config)
    [alias] = stored({"type": "alias", "userId": "u", "previousId": "p"})
    assert AMPLITUDE.batch_key(identify) is None and AMPLITUDE.batch_key(alias) is None
    [other] = stored({"type": "track", "userId": "u", "event": "E"}, {"apiKey": "another-key"})
    assert AMPLITUDE.batch_key(other) != AMPLITUDE.batch_key(member)


def test_batches_stay_inside_the_vendors_limits() -> None:
    assert AMPLITUDE.batch_size <= 2000 and AMPLITUDE.batch_bytes < 1_000_000


# --- answers --------------------------------------------------------------------------------


NOT_INGESTED = "not ingested: Amplitude refused the batch for other events in it"


def answer(status: int, **fields: Any) -> tuple[int, bytes]:
    return status, json.dumps({"code": status, **fields}).encode()


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (*answer(200, events_ingested=3, payload_size_bytes=90, server_upload_time=1), "delivered"),
        (200, b"not json at all", "delivered"),
        (*answer(400, error="Invalid API key: abc"), "aborted"),
        (*answer(400, error="Request missing required field", missing_field="api_key"), "aborted"),
        (400, b"<html>Bad Request</html>", "aborted"),
        (*answer(400, events_with_invalid_fields={"time": [7, -1, "0", True]}), "aborted"),
        (*answer(413, error="Payload too large"), "retry"),
        (*answer(429, error="Too many requests for some devices and users", eps_threshold=30,
                 throttled_users={"u1": 31}, throttled_devices={}), "retry"),
        (*answer(429, exceeded_daily_quota_users={"u1": 500001}), "retry"),
        (500, b"", "retry"),
        (502, b"<html>Bad gateway</html>", "retry"),
        (503, b"Service Unavailable", "retry"),
        (504, b"\xff\xfe", "retry"),
        (404, b"Not Found", "aborted"),
    ],
)  # fmt: skip
def test_whole_request_answers(status: int, body: bytes, verdict: str) -> None:
    assert AMPLITUDE.classify(status, body, 3) == Verdict(verdict)


def test_a_400_naming_events_aborts_those_and_resends_the_rest() -> None:
    status, body = answer(
        400,
        error="Invalid field values on some events",
        events_with_invalid_fields={"time": [0, 3], "event_properties": [3]},
        events_with_missing_fields={"event_type": [2]},
        events_with_invalid_id_lengths={"user_id": [9]},  # not in this batch: ignored
    )
    judged = AMPLITUDE.classify(status, body, 4)
    assert judged == [
        Judgement(Verdict.ABORT, "Invalid field values on some events: time invalid"),
        Judgement(Verdict.RETRY, NOT_INGESTED),
        Judgement(Verdict.ABORT, "Invalid field values on some events: event_type missing"),
        Judgement(Verdict.ABORT, "Invalid field values on some events: time invalid, "
                                 "event_properties invalid"),
    ]  # fmt: skip
    short = answer(
        400, error="Invalid id length", events_with_invalid_id_lengths={"device_id": [0]}
    )
    assert AMPLITUDE.classify(*short, 1) == [
        Judgement(Verdict.ABORT, "Invalid id length: device_id too short")
    ]
