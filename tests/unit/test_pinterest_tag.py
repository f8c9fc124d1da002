"""The Pinterest Conversions mapping: settings, names, refusals, user data, batching, and what
Pinterest's answers mean — the rules the conformance cases do not reach."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.pinterest_tag import HELP, PINTEREST_TAG, PinterestSettings

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN = "pina_token-3f9c1d"
V3 = {"advertiserId": "2612345678901"}
V5 = {"apiVersion": "newApi", "adAccountId": "549755885175", "conversionToken": TOKEN}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def track(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track", "event": "signup", "userId": "u1", "messageId": "m-1",
        "timestamp": "2026-02-28T10:00:00.900Z", "channel": "web",
        "context": {"traits": {"email": "ada@example.com"}}, **fields,
    }  # fmt: skip


def requests(event: dict[str, Any], **config: Any) -> list[Request]:
    settings = PINTEREST_TAG.parse_settings({**V3, **config})
    made: list[Request] = PINTEREST_TAG.map(codec.decode(json.dumps(event)), settings, NOW)
    return made


def body(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [request] = requests(event, **config)
    made: dict[str, Any] = request.body
    return made


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "advertiserId is required with the legacy API"),
        ({"advertiserId": "  "}, "advertiserId is required"),
        ({"apiVersion": "newApi", "conversionToken": TOKEN}, "adAccountId is required"),
        ({**V5, "adAccountId": "549/../me"}, "adAccountId"),
        ({**V5, "conversionToken": ""}, "conversionToken is required with apiVersion newApi"),
        ({**V5, "conversionToken": None}, "conversionToken is required with apiVersion newApi"),
        (
            {k: v for k, v in V5.items() if k != "conversionToken"},
            "conversionToken is required with apiVersion newApi",
        ),
        ({**V5, "conversionToken": "two words"}, "conversionToken must be a single word"),
        ({**V3, "apiVersion": "v5"}, "apiVersion"),
        ({**V3, "endpoint": "ftp://proxy"}, "not an http"),
    ],
)
def test_settings_a_user_must_fix_are_refused_with_the_key_named(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=message):
        PINTEREST_TAG.parse_settings(config)


def test_a_refused_token_is_not_shown_in_the_message() -> None:
    with pytest.raises(BadSettings) as refused:
        PINTEREST_TAG.parse_settings({**V5, "conversionToken": "secret value"})
    assert "secret value" not in str(refused.value)


def test_ids_written_as_numbers_are_taken_as_text() -> None:
    settings = PINTEREST_TAG.parse_settings({"advertiserId": 2612345678901, "appId": 429047995})
    assert (settings.advertiserId, settings.appId) == ("2612345678901", "429047995")


def test_every_setting_has_a_line_of_help() -> None:
    names = {f.encode_name for f in msgspec.structs.fields(PinterestSettings)}
    assert set(HELP) == names


def test_identify_group_and_alias_are_filtered_not_failed() -> None:
    assert PINTEREST_TAG.supported_types == {"track", "page", "screen"}
    with pytest.raises(preview.PreviewError, match="does not take"):
        preview.of_type("pinterest_tag", V3, {"type": "identify", "userId": "u1"}, NOW)


# Endpoints and auth


def test_v3_and_v5_address_and_authenticate_as_pinterest_wants() -> None:
    [v3] = requests(track())
    assert v3.url == "https://ct.pinterest.com/events/v3" and "Authorization" not in v3.headers
    assert v3.body["advertiser_id"] == V3["advertiserId"] and v3.params == {}
    [v5] = requests(track(), **V5, sendAsTestEvent=True)
    assert v5.url == "https://api.pinterest.com/v5/ad_accounts/549755885175/events"
    assert v5.headers["Authorization"] == f"Bearer {TOKEN}" and v5.params == {"test": "true"}
    assert "advertiser_id" not in v5.body


def test_the_endpoint_setting_replaces_the_host_and_keeps_the_paths() -> None:
    [v3] = requests(track(), endpoint="http://proxy.local:8080/pin/")
    assert v3.url == "http://proxy.local:8080/pin/events/v3"
    [v5] = requests(track(), **V5, endpoint="http://proxy.local:8080")
    assert v5.url == "http://proxy.local:8080/v5/ad_accounts/549755885175/events"


def test_the_preview_masks_the_token() -> None:
    [shown] = preview.of_type("pinterest_tag", V5, track(), NOW)
    assert shown.headers["Authorization"] == "Bearer ****"
    assert TOKEN not in codec.encode(shown).decode()


# Names


def test_one_event_mapped_to_several_names_makes_one_request_each() -> None:
    mapping = [
        {"from": "Signed Up", "to": "Signup"},
        {"from": "Signed Up", "to": "Lead"},
        {"from": "Signed Up", "to": "Signup"},  # the same name twice: sent once
        {"from": "signed up", "to": "Custom"},  # names match as written
    ]
    made = requests(track(event="Signed Up"), eventsMapping=mapping)
    assert [r.body["event_name"] for r in made] == ["signup", "lead"]
    assert {r.body["event_id"] for r in made} == {"m-1"}


@pytest.mark.parametrize(
    ("event", "config", "name"),
    [
        (track(event="PRODUCTS SEARCHED"), {}, "search"),
        (track(event="lead"), {}, "lead"),  # Pinterest's own name, as it is
        (track(event="Newsletter"), {"sendAsCustomEvent": True}, "custom"),
        (track(event="Newsletter"), {"eventsMapping": [{"from": "Newsletter", "to": "Lead"}]},
         "lead"),
        (track(type="page", event=None, name="Boots", category="Shoes"), {}, "view_category"),
        (track(type="page", event=None, name="Home"), {}, "page_visit"),
        (track(type="screen", event=None, name="Cart"),
         {"eventsMapping": [{"from": "Cart", "to": "AddToCart"}]}, "add_to_cart"),
    ],
)  # fmt: skip
def test_event_names(event: dict[str, Any], config: dict[str, Any], name: str) -> None:
    assert body(event, **config)["event_name"] == name


@pytest.mark.parametrize("name", ["Newsletter", "Lead", "Signed Up"])
def test_a_name_pinterest_does_not_take_is_refused_before_sending(name: str) -> None:
    with pytest.raises(Unsendable) as refused:
        requests(track(event=name))
    assert "map it in eventsMapping or turn on sendAsCustomEvent" in str(refused.value)


def test_custom_properties_are_accepted_and_not_sent() -> None:
    # A device-mode setting (the browser tag's event data): Pinterest's Conversions API takes
    # only its own custom_data fields, so sending them would risk refusals.
    rows = [{"properties": "presentclass"}, {"properties": "presentgrade"}]
    settings = PINTEREST_TAG.parse_settings({**V3, "customProperties": rows})
    assert [row.properties for row in settings.customProperties] == ["presentclass", "presentgrade"]
    event = track(properties={"presentclass": "A", "presentgrade": 2, "currency": "EUR"})
    assert body(event, customProperties=rows)["custom_data"] == {"currency": "EUR"}
    assert "not sent" in HELP["customProperties"]


def test_a_track_without_a_name_is_refused() -> None:
    with pytest.raises(Unsendable, match="no name"):
        requests(track(event=""))


# Event fields


@pytest.mark.parametrize(
    ("fields", "source"),
    [
        ({"channel": "web"}, "web"),
        ({"channel": "mobile", "context": {"os": {"name": "iOS"}, "userAgent": "a",
                                          "ip": "10.0.0.1"}}, "app_ios"),
        ({"channel": "server", "properties": {"actionSource": "offline"}}, "offline"),
        ({"channel": "web", "traits": {"action_source": "APP_ANDROID",
                                       "email": "a@b.example"}}, "app_android"),
    ],
)  # fmt: skip
def test_action_source(fields: dict[str, Any], source: str) -> None:
    assert body(track(**fields))["action_source"] == source


@pytest.mark.parametrize("channel", ["server", "mobile", None])
def test_an_action_source_pinterest_does_not_take_is_refused(channel: str | None) -> None:
    with pytest.raises(Unsendable, match=r"properties\.actionSource"):
        requests(track(channel=channel))


def test_time_dedup_id_and_context_fields() -> None:
    event = track(
        properties={"eventId": "tag-77", "partnerName": "ss-acme"},
        context={
            "traits": {"email": "ada@example.com"}, "locale": "de-AT",
            "app": {"name": "Shop", "version": "7.9"}, "os": {"version": "17.2"},
            "device": {"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios",
                       "adTrackingEnabled": False},
            "network": {"carrier": "T-Mobile", "wifi": False},
        },
    )  # fmt: skip
    made = body(event, enableDeduplication=True, deduplicationKey="properties.eventId")
    assert made["event_time"] == 1772272800 and made["event_id"] == "tag-77"
    assert {k: made[k] for k in ("app_name", "app_version", "device_brand", "device_model",
                                 "device_type", "device_carrier", "os_version", "language",
                                 "wifi", "opt_out", "partner_name")} == {
        "app_name": "Shop", "app_version": "7.9", "device_brand": "Apple",
        "device_model": "iPhone15,2", "device_type": "ios", "device_carrier": "T-Mobile",
        "os_version": "17.2", "language": "de", "wifi": False, "opt_out": True,
        "partner_name": "ss-acme",
    }  # fmt: skip
    assert "advertiser_tracking_enabled" not in made  # a v5 field
    assert body(event, **V5)["advertiser_tracking_enabled"] is False


def test_the_dedup_key_is_read_only_when_deduplication_is_on() -> None:
    event = track(properties={"eventId": "tag-77"})
    assert body(event, deduplicationKey="properties.eventId")["event_id"] == "m-1"
    missing = body(event, enableDeduplication=True, deduplicationKey="properties.nothing")
    assert missing["event_id"] == "m-1"


# user_data


def test_user_details_are_normalised_then_hashed() -> None:
    traits = {
        "email": [" Ada@Example.COM", "ada2@example.com"], "phone": "+49 (0)30 1234",
        "gender": "Female", "birthday": "1990-07-15", "firstName": " Ada ", "lastname": "L",
        "address": {"city": "New York", "state": "NY", "zip": "10001-1234", "country": "US"},
    }  # fmt: skip
    user = body(track(context={"traits": traits}))["user_data"]
    assert user == {
        "em": [sha("ada@example.com"), sha("ada2@example.com")],
        "ph": [sha("490301234")], "ge": [sha("f")], "db": [sha("19900715")],
        "fn": [sha("ada")], "ln": [sha("l")], "ct": [sha("newyork")], "st": [sha("ny")],
        "zp": [sha("10001")], "country": [sha("us")],
    }  # fmt: skip


def test_values_that_cannot_be_matched_are_left_out() -> None:
    traits = {"email": "a@b.example", "gender": "unknown", "birthday": "July", "phone": "n/a",
              "firstName": {"nested": True}}  # fmt: skip
    assert body(track(context={"traits": traits}))["user_data"] == {"em": [sha("a@b.example")]}


def test_details_said_to_be_hashed_are_sent_as_given() -> None:
    traits = {"email": "ALREADY-HASHED", "gender": "Female", "address": {"zip": "10001-1234"}}
    user = body(track(context={"traits": traits}), sendingUnHashedData=False)["user_data"]
    assert user == {"em": ["ALREADY-HASHED"], "ge": ["Female"], "zp": ["10001-1234"]}


def test_external_id_only_when_asked_and_plain_fields_as_they_are() -> None:
    event = track(
        traits={"partnerId": 991}, properties={"clickId": "dj0yJnU9"},
        context={"traits": {"email": "a@b.example"}, "ip": "2001:db8::1", "userAgent": "UA/1"},
    )  # fmt: skip
    user = body(event)["user_data"]
    assert "external_id" not in user
    assert (user["client_ip_address"], user["client_user_agent"]) == ("2001:db8::1", "UA/1")
    assert (user["click_id"], user["partner_id"]) == ("dj0yJnU9", "991")
    assert body(event, sendExternalId=True)["user_data"]["external_id"] == [sha("u1")]


def test_an_event_pinterest_cannot_match_is_refused() -> None:
    with pytest.raises(Unsendable, match="email"):
        requests(track(context={"userAgent": "UA/1", "traits": {"phone": "+1 555"}}))
    # an IP and a user agent together are enough
    user = body(track(context={"userAgent": "UA/1", "ip": "203.0.113.1"}))["user_data"]
    assert user == {"client_ip_address": "203.0.113.1", "client_user_agent": "UA/1"}


# custom_data


def test_custom_data_from_one_product_and_from_none() -> None:
    props = {"sku": "s-1", "price": 9.99, "quantity": 3, "name": "Sock", "brand": "Acme",
             "revenue": 29.97, "query": "socks", "contentCategory": "Clothes"}  # fmt: skip
    assert body(track(properties=props))["custom_data"] == {
        "num_items": 3, "content_ids": ["s-1"], "value": "29.97", "search_string": "socks",
        "content_category": "Clothes",
        "contents": [{"id": "s-1", "quantity": 3, "item_price": "9.99", "item_name": "Sock",
                      "item_brand": "Acme"}],
    }  # fmt: skip
    assert "custom_data" not in body(track(properties={"plan": "pro"}))
    assert body(track(properties={"plan": "pro", "currency": "EUR"}))["custom_data"] == {
        "currency": "EUR"
    }


def test_num_of_items_wins_over_the_products_count() -> None:
    props = {"numOfItems": 7, "products": [{"product_id": "p", "quantity": 2}, "junk"]}
    custom = body(track(properties=props))["custom_data"]
    assert custom["num_items"] == 7 and custom["content_ids"] == ["p"]


def test_page_and_screen_carry_no_custom_data() -> None:
    page = track(type="page", event=None, name="Shop", properties={"revenue": 5, "sku": "s"})
    assert "custom_data" not in body(page)


# Batching


def test_events_combine_into_one_data_list_only_with_the_same_token_and_test_flag() -> None:
    [a] = requests(track(), **V5)
    [b] = requests(track(messageId="m-2"), **V5)
    [other_token] = requests(track(), **{**V5, "conversionToken": "pina_other"})
    [testing] = requests(track(), **V5, sendAsTestEvent=True)
    key = PINTEREST_TAG.batch_key
    assert key(a) == key(b)
    assert len({key(a), key(other_token), key(testing)}) == 3
    assert PINTEREST_TAG.combine is not None
    combined = PINTEREST_TAG.combine([a, b])
    assert combined.body == {"data": [a.body, b.body]}
    assert (combined.url, combined.headers) == (a.url, a.headers)
    assert PINTEREST_TAG.batch_size == 1000


# Answers


def answer(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def entry(status: str, error: str | None = None) -> dict[str, Any]:
    return {"status": status, "error_message": error, "warning_message": None}


def test_a_batch_pinterest_took_whole_is_delivered() -> None:
    took = answer(num_events_received=2, num_events_processed=2,
                  events=[entry("processed"), entry("processed")])  # fmt: skip
    assert PINTEREST_TAG.classify(200, took, 2) is Verdict.DELIVERED
    assert PINTEREST_TAG.classify(200, b"", 2) is Verdict.DELIVERED


def test_refused_events_fail_alone_in_the_order_sent() -> None:
    partial = answer(num_events_received=3, num_events_processed=2,
                     events=[entry("processed"), entry("failed", "Invalid event_name"),
                             entry("processed")])  # fmt: skip
    assert PINTEREST_TAG.classify(200, partial, 3) == [
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.ABORT, "Invalid event_name"),
        Judgement(Verdict.DELIVERED),
    ]


def test_a_422_that_lists_the_events_is_read_event_by_event() -> None:
    details = {"num_events_received": 2, "num_events_processed": 1,
               "events": [entry("failed", "event_time too old"), entry("processed")]}  # fmt: skip
    judged = PINTEREST_TAG.classify(422, answer(code=4, message="Not all", details=details), 2)
    assert judged == [Judgement(Verdict.ABORT, "event_time too old"), Judgement(Verdict.DELIVERED)]
    bare = PINTEREST_TAG.classify(422, answer(code=4, message="Not all events processed"), 2)
    assert bare == [Judgement(Verdict.ABORT, "Not all events processed (code 4)")] * 2


def test_an_answer_that_does_not_list_every_event_is_taken_for_the_batch() -> None:
    short = answer(num_events_received=3, num_events_processed=2, events=[entry("failed", "x")])
    assert PINTEREST_TAG.classify(200, short, 3) is Verdict.DELIVERED


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (429, answer(code=8, message="This request exceeded a rate limit."), Verdict.RETRY),
        (503, answer(code=4197, message="ramped down"), Verdict.RETRY),
        (500, b"<html>oops</html>", Verdict.RETRY),
        (401, answer(code=2, message="Authentication failed."), Verdict.ABORT),
        (403, answer(code=29, message="You are not permitted"), Verdict.ABORT),
        (400, answer(code=1, message="Invalid parameters"), Verdict.ABORT),
        (404, b"not json", Verdict.ABORT),
    ],
)
def test_error_answers(status: int, body: bytes, verdict: Verdict) -> None:
    judged = PINTEREST_TAG.classify(status, body, 2)
    if isinstance(judged, Verdict):
        assert judged is verdict
    else:
        assert {j.verdict for j in judged} == {verdict} and len(judged) == 2


def test_error_answers_carry_pinterests_words() -> None:
    judged = PINTEREST_TAG.classify(401, answer(code=2, message="Authentication failed."), 1)
    assert judged == [Judgement(Verdict.ABORT, "Authentication failed. (code 2)")]


def test_a_batch_too_large_is_judged_whole_for_the_router_to_split() -> None:
    too_large = answer(code=413, message="Request entity too large")
    assert PINTEREST_TAG.classify(413, too_large, 3) is Verdict.ABORT
