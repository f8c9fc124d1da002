"""The Iterable mapping: settings, refusals, the rules no conformance case covers, batching into
the bulk endpoints and what Iterable's answers mean (a bulk answer's refusals, item by item)."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import msgspec.inspect
import pytest

from engine import codec
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.iterable import ITERABLE, MAX_BYTES, MAX_ID_BYTES

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "itbl-key-0a9c2e71"
DEVICE_KEY = "itbl-mobile-4f2d"
STAMP = "2026-02-28T10:00:00.123Z"
STAMP_MS = 1772272800123


def settings(**config: Any) -> Any:
    return ITERABLE.parse_settings({"apiKey": KEY, **config})


def made(event: dict[str, Any], **config: Any) -> list[Request]:
    return ITERABLE.map(codec.decode(json.dumps(event)), settings(**config), NOW)


def body(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [request] = made(event, **config)
    found: dict[str, Any] = request.body
    return found


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": "u1", "timestamp": STAMP, **fields}


def page(**fields: Any) -> dict[str, Any]:
    return {"type": "page", "userId": "u1", "name": "Pricing", **fields}


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "apiKey"),
        ({"apiKey": "  "}, "apiKey is empty"),
        ({"apiKey": "a key"}, "apiKey contains spaces"),
        ({"apiKey": KEY, "registerDeviceOrBrowserApiKey": "x\ny"}, "registerDeviceOrBrowser"),
        ({"apiKey": KEY, "dataCenter": "APDC"}, "dataCenter"),
        ({"apiKey": KEY, "endpoint": "api.iterable.com"}, "not an http"),
    ],
)
def test_settings_a_user_must_fix_are_refused_with_the_field_named(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=message):
        ITERABLE.parse_settings(config)


def test_the_data_center_and_the_endpoint_choose_the_host() -> None:
    identify = {"type": "identify", "userId": "u1"}
    assert made(identify)[0].url == "https://api.iterable.com/api/users/update"
    assert made(identify, dataCenter=None)[0].url == "https://api.iterable.com/api/users/update"
    assert (
        made(identify, dataCenter="EUDC")[0].url == "https://api.eu.iterable.com/api/users/update"
    )
    proxied = made(identify, dataCenter="EUDC", endpoint="http://proxy.local:8080/")
    assert proxied[0].url == "http://proxy.local:8080/api/users/update"


def test_both_keys_are_secrets_and_every_setting_has_help() -> None:
    config = {"apiKey": KEY, "registerDeviceOrBrowserApiKey": DEVICE_KEY}
    assert ITERABLE.secrets(config) == [KEY, DEVICE_KEY]
    fields = set(msgspec_fields())
    assert set(ITERABLE.help) == fields
    assert ITERABLE.required == ("apiKey",)


def msgspec_fields() -> list[str]:
    info = msgspec.inspect.type_info(ITERABLE.settings)
    assert isinstance(info, msgspec.inspect.StructType)
    return [f.name for f in info.fields]


# Mapping


def test_group_is_not_taken_and_an_unknown_call_is_refused() -> None:
    assert "group" not in ITERABLE.supported_types
    with pytest.raises(Unsendable, match="unsupported call type"):
        made({"type": "group", "userId": "u1", "groupId": "g"})


def test_an_event_with_neither_user_id_nor_email_is_refused() -> None:
    with pytest.raises(Unsendable, match="userId or email"):
        made({"type": "track", "event": "Viewed"})
    assert body({"type": "track", "event": "Viewed", "properties": {"email": "a@b.co"}}) == {
        "email": "a@b.co", "eventName": "Viewed", "dataFields": {"email": "a@b.co"}}  # fmt: skip


def test_a_track_without_a_name_is_refused() -> None:
    for name in (None, "", "  "):
        with pytest.raises(Unsendable, match="event name"):
            made(track(event=name))


def test_created_at_is_the_event_time_else_when_the_gateway_received_it() -> None:
    both = track(originalTimestamp="2020-01-01T00:00:00Z", context={"traits": {"createdAt": 1}})
    assert body(both)["createdAt"] == STAMP_MS  # the timestamp; never the user's sign-up date
    received = track(timestamp=None, receivedAt=STAMP)
    assert body(received)["createdAt"] == STAMP_MS
    assert "createdAt" not in body(track(timestamp=None))


def test_campaign_and_template_ids_go_as_integers_when_they_are_numbers() -> None:
    ids = body(track(properties={"campaignId": "12", "templateId": 7.0}))
    assert (ids["campaignId"], ids["templateId"]) == (12, 7)
    kept_out = body(track(properties={"campaignId": "abc", "templateId": 0}))
    assert "campaignId" not in kept_out and "templateId" not in kept_out


@pytest.mark.parametrize(
    ("config", "event", "name"),
    [
        ({}, page(), "Pricing page"),
        ({}, page(name=None), "undefined page"),  # RudderStack's name for it, kept
        ({}, page(name=None, properties={"name": "Docs"}), "Docs page"),
        ({"mapToSingleEvent": True}, page(type="screen"), "Loaded a Screen"),
        ({"trackAllPages": False, "trackNamedPages": True}, page(), "Pricing page"),
        (
            {"trackAllPages": False, "trackCategorisedPages": True},
            page(category="Docs"),
            "Pricing page",
        ),
    ],
)
def test_page_and_screen_names(config: dict[str, Any], event: dict[str, Any], name: str) -> None:
    assert body(event, **config)["eventName"] == name


def test_pages_the_settings_do_not_send_are_refused_with_the_settings_named() -> None:
    off = {"trackAllPages": False, "trackCategorisedPages": True, "trackNamedPages": False}
    with pytest.raises(Unsendable, match="trackAllPages is off"):
        made(page(), **off)
    with pytest.raises(Unsendable, match="screen calls are not sent"):
        made(page(type="screen", name=None), trackAllPages=False, trackNamedPages=True)


def test_an_order_is_a_purchase_with_its_items_and_user() -> None:
    order = track(
        event="order completed",
        context={"traits": {"email": "ada@example.com", "plan": "pro"}},
        properties={"orderId": 1001, "total": "30.5", "campaignId": "3", "products": [
            {"product_id": 7, "name": "Mug", "price": 12.25, "quantity": "2.0",
             "category": ["kitchen", 9], "description": "big", "properties": {"color": "red"}},
        ]},
    )  # fmt: skip
    [request] = made(order, preferUserId=False)
    assert request.url.endswith("/api/commerce/trackPurchase")
    sent = json.loads(codec.encode(request.body))
    assert sent["id"] == "1001" and sent["total"] == 30.5 and sent["campaignId"] == 3
    assert sent["createdAt"] == STAMP_MS
    assert sent["user"] == {"email": "ada@example.com", "userId": "u1",
                            "dataFields": {"email": "ada@example.com", "plan": "pro"},
                            "preferUserId": False, "mergeNestedObjects": True}  # fmt: skip
    assert sent["items"] == [{"id": "7", "name": "Mug", "price": 12.25, "quantity": 2,
                              "categories": ["kitchen", "9"], "description": "big",
                              "dataFields": {"color": "red"}}]  # fmt: skip


def test_commerce_calls_iterable_would_refuse_are_refused_here() -> None:
    with pytest.raises(Unsendable, match=r"properties\.total"):
        made(track(event="Order Completed", properties={"order_id": "o"}))
    product = {"product_id": "p", "name": "Pen", "quantity": 1}
    with pytest.raises(Unsendable, match="product 2 has no price"):
        made(track(event="Product Removed", properties={"products": [
            {**product, "price": 1}, {**product, "price": "free"}]}))  # fmt: skip
    with pytest.raises(Unsendable, match="product 1 has no id, name"):
        made(track(event="Product Added", properties={"price": 1, "quantity": 1}))


def test_an_alias_needs_both_emails() -> None:
    with pytest.raises(Unsendable, match="previousId"):
        made({"type": "alias", "userId": "new@example.com"})
    [request] = made({"type": "alias", "userId": "n@x.io", "previousId": "o@x.io"})
    assert request.url.endswith("/api/users/updateEmail")
    assert request.body == {"currentEmail": "o@x.io", "newEmail": "n@x.io"}


def test_push_tokens_are_registered_with_their_own_key_only_when_it_is_set() -> None:
    android = {"type": "identify", "userId": "u1", "properties": {"app": "beta"},
               "context": {"device": {"token": 54321, "type": "android"}}}  # fmt: skip
    assert len(made(android)) == 1  # no token key: the update only
    update, device = made(android, registerDeviceOrBrowserApiKey=DEVICE_KEY)
    assert update.headers["api_key"] == KEY and device.headers["api_key"] == DEVICE_KEY
    assert device.url.endswith("/api/users/registerDeviceToken")
    assert device.body == {"userId": "u1", "preferUserId": True, "device": {
        "token": "54321", "platform": "GCM", "dataFields": {"app": "beta"}}}  # fmt: skip
    browser = {"type": "identify", "anonymousId": "a1", "traits": {"email": "a@b.co"},
               "context": {"os": {"token": "web-1"}}}  # fmt: skip
    _, registered = made(browser, registerDeviceOrBrowserApiKey=DEVICE_KEY)
    assert registered.url.endswith("/api/users/registerBrowserToken")
    assert registered.body == {"browserToken": "web-1", "email": "a@b.co", "userId": "a1"}


def test_a_reverse_etl_identify_for_users_only() -> None:
    def synced(kind: str) -> dict[str, Any]:
        external = {"id": "ada@example.com", "identifierType": "email", "type": kind}
        context = {"mappedToDestination": True, "externalId": [external]}
        return {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "context": context}

    user = body(synced("ITERABLE-users"))
    assert user["email"] == "ada@example.com"
    assert user["dataFields"] == {"plan": "pro", "email": "ada@example.com"}
    with pytest.raises(Unsendable, match="catalogs are not supported"):
        made(synced("ITERABLE-products"))


def test_a_request_over_iterables_size_limit_is_refused_alone() -> None:
    with pytest.raises(Unsendable, match="4,000,000 bytes"):
        made(track(properties={"blob": "x" * MAX_BYTES}))


# Batching


def test_users_and_events_combine_per_endpoint_and_key_the_rest_goes_alone() -> None:
    identify, event = {"type": "identify", "userId": "u1"}, track()
    [update], [tracked] = made(identify), made(event)
    [other_key] = ITERABLE.map(codec.decode(json.dumps(event)), settings(apiKey="other"), NOW)
    keys = {ITERABLE.batch_key(r) for r in (update, tracked, other_key)}
    assert len(keys) == 3 and None not in keys
    alone = [
        made({"type": "alias", "userId": "n@x.io", "previousId": "o@x.io"})[0],
        made(track(event="Product Added", properties={"product_id": "p", "name": "n",
                                                      "price": 1, "quantity": 1}))[0],
    ]  # fmt: skip
    assert [ITERABLE.batch_key(r) for r in alone] == [None, None]
    assert ITERABLE.combine is not None
    users = ITERABLE.combine([update, update])
    assert users.url == "https://api.iterable.com/api/users/bulkUpdate"
    assert users.headers == {"Content-Type": "application/json", "api_key": KEY}
    assert users.body == {"users": [update.body, update.body]}
    events = ITERABLE.combine([tracked])
    assert events.url.endswith("/api/events/trackBulk")
    assert events.body == {"events": [tracked.body]}


# Answers

SUCCESS = b'{"msg":"","code":"Success","params":null}'


@pytest.mark.parametrize(
    ("status", "answer", "verdict"),
    [
        (200, SUCCESS, Verdict.DELIVERED),
        (200, b"", Verdict.DELIVERED),
        (200, b'{"successCount":2,"failCount":0,"invalidEmails":[]}', Verdict.DELIVERED),
        (413, b"", Verdict.RETRY),
        (429, b'{"msg":"Rate limit exceeded","code":"RateLimitExceeded"}', Verdict.RETRY),
        (500, b"oops", Verdict.RETRY),
        (503, b"", Verdict.RETRY),
        (400, b"<html>bad</html>", Verdict.ABORT),
    ],
)
def test_answers_judged_whole(status: int, answer: bytes, verdict: Verdict) -> None:
    assert ITERABLE.judge(status, answer, _events({}, {})) == verdict


def test_a_refusal_carries_iterables_code_and_message() -> None:
    answer = b'{"msg":"Invalid API key","code":"BadApiKey","params":{"endpoint":"/api/x"}}'
    assert (
        ITERABLE.judge(401, answer, _events({}, {}))
        == [Judgement(Verdict.ABORT, "BadApiKey: Invalid API key")] * 2
    )
    invalid = b'{"msg":"Invalid email: x","code":"InvalidEmailAddressError","params":null}'
    assert ITERABLE.judge(400, invalid, _events({})) == [
        Judgement(Verdict.ABORT, "InvalidEmailAddressError: Invalid email: x")
    ]


def _events(*items: dict[str, Any]) -> list[Request]:
    return [Request("POST", "https://api.iterable.com/api/events/track", {}, {}, i) for i in items]


PARTIAL = json.dumps({
    "successCount": 1, "failCount": 3,
    "invalidEmails": ["bad"], "invalidUserIds": [],
    "failedUpdates": {"forgottenUserIds": ["u-gone"], "notFoundEmails": ["bad"]},
    "disallowedEventNames": ["Blocked"],
}).encode()  # fmt: skip


def test_a_bulk_answer_refuses_the_items_it_names_and_no_others() -> None:
    sent = _events(
        {"userId": "u1", "eventName": "Viewed"},
        {"email": "bad", "eventName": "Viewed"},
        {"userId": "u-gone", "email": "ok@x.io", "eventName": "Viewed"},
        {"userId": "u4", "eventName": "Blocked"},
    )
    assert ITERABLE.judge(200, PARTIAL, sent) == [
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.ABORT, "email 'bad' in invalidEmails, failedUpdates.notFoundEmails"),
        Judgement(Verdict.ABORT, "userId 'u-gone' in failedUpdates.forgottenUserIds"),
        Judgement(Verdict.ABORT, "eventName 'Blocked' in disallowedEventNames"),
    ]


def test_a_bulk_answer_naming_none_of_the_batch_delivers_it() -> None:
    sent = _events({"userId": "u1", "eventName": "Viewed"})
    assert ITERABLE.judge(200, PARTIAL, sent) == Verdict.DELIVERED


# Dedup: Iterable's event id


def _id(event: dict[str, Any]) -> Any:
    return body(event).get("id")


def test_events_pages_and_screens_carry_their_message_id_as_iterables_id() -> None:
    assert _id(track(messageId="m-1")) == "m-1"
    assert _id(page(messageId="m-2")) == "m-2"
    assert _id(page(type="screen", messageId="m-3")) == "m-3"
    assert _id(track(messageId=12)) == "12"  # (text, as Iterable's id is)


def test_the_same_event_gets_the_same_id_and_another_a_different_one() -> None:
    first = _id(track(messageId="m-1"))
    assert _id(track(messageId="m-1", properties={"changed": True})) == first
    assert _id(track(messageId="m-2")) != first


def test_an_event_without_a_message_id_carries_no_id() -> None:
    assert "id" not in body(track())
    assert "id" not in body(track(messageId=""))
    assert "id" not in body(page())


def test_the_senders_event_id_wins_over_the_message_id() -> None:
    assert _id(track(messageId="m-1", properties={"event_id": "e-7"})) == "e-7"


def test_a_message_id_longer_than_iterable_takes_becomes_a_digest() -> None:
    fits, over = "m" * MAX_ID_BYTES, "é" * (MAX_ID_BYTES // 2 + 1)  # 514 bytes
    assert _id(track(messageId=fits)) == fits
    made_id = _id(track(messageId=over))
    assert made_id == "sha256:" + hashlib.sha256(over.encode()).hexdigest()
    assert len(made_id.encode()) <= MAX_ID_BYTES
    assert _id(track(messageId=over + "x")) != made_id


def test_a_purchase_carries_its_order_id_else_the_event_id_and_a_cart_none() -> None:
    product = {"product_id": "p", "name": "Pen", "price": 1, "quantity": 1}
    order = {"total": 1, "products": [product]}
    purchase = track(event="Order Completed", messageId="m-1", properties=order)
    assert _id(purchase) == "m-1"
    assert _id({**purchase, "properties": {**order, "order_id": "o-1"}}) == "o-1"
    cart = track(event="Product Added", messageId="m-1", properties=product)
    assert "id" not in body(cart)  # Iterable documents no id for a cart update


def test_a_bulk_request_keeps_each_events_id() -> None:
    assert ITERABLE.combine is not None
    requests = [made(track(messageId=f"m-{n}"))[0] for n in range(3)]
    events = ITERABLE.combine(requests).body["events"]
    assert [e["id"] for e in events] == ["m-0", "m-1", "m-2"]
