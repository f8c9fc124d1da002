"""The TikTok Ads mapping: settings it refuses, events it cannot send, what it sends, how its
requests combine (the router cases of destinations2.json among them), and what TikTok's answers
mean."""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import (
    BadSettings,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    decode_request,
)
from engine.destinations.tiktok_ads import TIKTOK_ADS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "tt-access-token-5d1e0c"
CONFIG: dict[str, Any] = {"accessToken": TOKEN, "pixelCode": "CPIXEL123"}
TRACK: dict[str, Any] = {
    "type": "track", "event": "Purchase", "messageId": "m-1", "userId": "u-1",
    "timestamp": "2026-01-01T10:00:00.250Z",
}  # fmt: skip


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def mapped(event: dict[str, Any], **config: Any) -> list[Request]:
    settings = TIKTOK_ADS.parse_settings({**CONFIG, **config})
    return TIKTOK_ADS.map(codec.decode(json.dumps(event)), settings, NOW)


def body(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [request] = mapped(event, **config)
    found: dict[str, Any] = json.loads(codec.encode(request.body))
    return found


def entry(event: dict[str, Any], **config: Any) -> dict[str, Any]:
    [made] = body(event, version="v2", **config)["data"]
    return dict(made)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"pixelCode": "P"}, "accessToken"),
        ({"accessToken": TOKEN}, "pixelCode"),
        ({**CONFIG, "accessToken": ""}, "accessToken must not be empty"),
        ({**CONFIG, "accessToken": "two words"}, "no spaces"),
        ({**CONFIG, "pixelCode": "  "}, "pixelCode"),
        ({**CONFIG, "version": "v3"}, "version"),
        ({**CONFIG, "eventsToStandard": [{"from": "Signed Up", "to": ""}]}, "maps to no event"),
        ({**CONFIG, "eventsToStandard": [{"from": "x", "to": f"E{n}"} for n in range(21)]},
         "at most 20"),
        ({**CONFIG, "endpoint": "ftp://example.com"}, r"not an http\(s\) URL"),
    ],
)  # fmt: skip
def test_settings_it_refuses(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=message):
        TIKTOK_ADS.parse_settings(config)


def test_a_bad_token_is_refused_without_being_shown() -> None:
    with pytest.raises(BadSettings) as refused:
        TIKTOK_ADS.parse_settings({**CONFIG, "accessToken": "secret with spaces"})
    assert "secret with spaces" not in str(refused.value)


def test_every_setting_has_help_and_the_token_is_secret() -> None:
    fields = {f.encode_name for f in msgspec.structs.fields(TIKTOK_ADS.settings)}
    assert set(TIKTOK_ADS.help) == fields
    assert TIKTOK_ADS.secret_keys == ("accessToken",)
    assert TIKTOK_ADS.required == ("accessToken", "pixelCode")


def test_empty_rows_of_rudderstacks_form_are_ignored() -> None:
    config = {
        **CONFIG,
        "eventsToStandard": [{"from": "", "to": ""}, {"from": "Bought", "to": "Purchase"}],
    }
    assert TIKTOK_ADS.parse_settings(config).standard() == {"bought": ["Purchase"]}


# --- events it cannot send ------------------------------------------------------------------


def test_only_track_calls_are_taken() -> None:
    assert TIKTOK_ADS.supported_types == frozenset({"track"})
    with pytest.raises(Unsendable, match="track calls only"):
        mapped({**TRACK, "type": "identify"})


@pytest.mark.parametrize("name", [None, "", "  ", 42])
def test_a_track_without_a_name_is_refused(name: Any) -> None:
    with pytest.raises(Unsendable, match="needs an event name"):
        mapped({**TRACK, "event": name})


def test_a_custom_event_needs_send_custom_events() -> None:
    with pytest.raises(Unsendable, match="sendCustomEvents"):
        mapped({**TRACK, "event": "Signed Up"})
    assert body({**TRACK, "event": " Signed Up "}, sendCustomEvents=True)["event"] == " Signed Up "


# --- what it sends --------------------------------------------------------------------------


def test_v1_event_fields_and_the_token_header() -> None:
    [request] = mapped({**TRACK, "event": "order completed", "properties": {
        "eventId": "e-9", "clickId": "click-1", "value": "12.5", "currency": "EUR",
        "product_id": 123, "order_id": 77, "category": {"not": "text"},
    }})  # fmt: skip
    assert request.url == "https://business-api.tiktok.com/open_api/v1.3/pixel/track/"
    assert request.headers == {"Access-Token": TOKEN, "Content-Type": "application/json"}
    made = json.loads(codec.encode(request.body))
    assert made == {
        "pixel_code": "CPIXEL123", "event": "PlaceAnOrder", "event_id": "e-9",
        "timestamp": "2026-01-01T10:00:00.250Z",
        "properties": {"value": 12.5, "currency": "EUR", "content_id": "123", "order_id": "77"},
        "context": {"ad": {"callback": "click-1"}},
    }  # fmt: skip


def test_the_endpoint_setting_replaces_the_host() -> None:
    [request] = mapped(TRACK, endpoint="http://127.0.0.1:9/")
    assert request.url == "http://127.0.0.1:9/open_api/v1.3/pixel/track/"
    [request] = mapped(TRACK, endpoint="http://127.0.0.1:9", version="v2")
    assert request.url == "http://127.0.0.1:9/open_api/v1.3/event/track/"


def test_time_falls_back_to_the_original_timestamp_then_now() -> None:
    event = {k: v for k, v in TRACK.items() if k != "timestamp"}
    assert body({**event, "originalTimestamp": "2025-12-31T23:00:00+01:00"})["timestamp"] == (
        "2025-12-31T22:00:00Z"
    )
    assert entry(event)["event_time"] == int(NOW.timestamp())


def test_hashing_trims_lowercases_emails_and_keeps_values_already_hashed() -> None:
    hashed = sha("someone")
    event = {**TRACK, "context": {
        "traits": {"email": " Ada@Example.COM ", "phone": "+44 20 7946 0000"},
        "externalId": [{"type": "tiktokExternalId", "id": hashed}],
    }}  # fmt: skip
    assert body(event)["context"]["user"] == {
        "email": sha("ada@example.com"), "phone_number": sha("+44 20 7946 0000"),
        "external_id": hashed,
    }  # fmt: skip
    assert entry(event)["user"] == {
        "email": sha("ada@example.com"),
        "phone": sha("+44 20 7946 0000"),
        "external_id": hashed,
    }
    plain = entry(event, hashUserProperties=False)["user"]
    assert plain == {"email": "ada@example.com", "phone": "+44 20 7946 0000", "external_id": hashed}


def test_lists_of_ids_are_hashed_one_by_one_in_v2_and_v1_takes_the_first() -> None:
    event = {
        **TRACK,
        "properties": {"phone": ["+1 555", "+1 556"]},
        "context": {"externalId": [{"type": "tiktokExternalId", "id": ["a", 7]}]},
    }
    user = entry(event)["user"]
    assert user == {"phone": [sha("+1 555"), sha("+1 556")], "external_id": [sha("a"), sha("7")]}
    assert body(event)["context"]["user"] == {"external_id": sha("a")}


def test_names_and_zip_codes_are_always_hashed() -> None:
    event = {
        **TRACK,
        "context": {
            "traits": {
                "firstName": " Ada ",
                "lastName": "Lovelace",
                "address": {"zip": "SW1A 1AA", "city": "London"},
            }
        },
    }
    user = entry(event, hashUserProperties=False)["user"]
    assert user == {"first_name": sha("ada"), "last_name": sha("lovelace"),
                    "zip_code": sha("sw1a1aa"), "city": "London"}  # fmt: skip


@pytest.mark.parametrize(
    ("os_name", "wanted"),
    [
        ("iOS", {"idfa": sha("AD-ID"), "idfv": "dev-1"}),
        ("Android", {"gaid": sha("ad-id")}),
        ("Windows", {}),
    ],
)
def test_advertising_ids_are_named_by_platform(os_name: str, wanted: dict[str, str]) -> None:
    event = {
        **TRACK,
        "context": {"os": {"name": os_name}, "device": {"advertisingId": " AD-ID ", "id": "dev-1"}},
    }
    assert entry(event).get("user", {}) == wanted


def test_contents_from_products_and_content_ids_as_text() -> None:
    products = [{"product_id": 11, "name": "Socks", "price": 8, "quantity": 2},
                {"sku": "B-2", "category": "dress"}]  # fmt: skip
    event = {**TRACK, "event": "product added", "properties": {"products": products}}
    v1 = body(event)["properties"]["contents"]
    assert v1 == [
        {"content_type": "product", "content_id": "11", "content_name": "Socks", "price": 8,
         "quantity": 2},
        {"content_type": "product", "content_id": "B-2", "content_category": "dress"},
    ]  # fmt: skip
    v2 = entry(event)["properties"]
    assert v2["contents"] == [{k: v for k, v in c.items() if k != "content_type"} for c in v1]
    assert (v2["contents_ids"], v2["num_items"], v2["content_type"]) == (
        ["11", "B-2"],
        2,
        "product",
    )
    given = {**TRACK, "properties": {"contents": {"content_id": 5, "price": 1}}}
    assert body(given)["properties"]["contents"] == [
        {"content_id": "5", "price": 1, "content_type": "product_group"}
    ]


def test_v2_event_source_page_ad_and_app() -> None:
    event = {**TRACK, "event": "Search", "properties": {
        "eventSource": "app", "query": "socks", "url": "https://shop/x", "callBack": "cb",
        "isRetargeting": True, "limited_data_use": True, "att_status": "authorized",
    }, "context": {"app": {"namespace": "com.shop", "name": "Shop", "version": "2.1"}}}  # fmt: skip
    made = body(event, version="v2")
    assert (made["event_source"], made["event_source_id"]) == ("app", "CPIXEL123")
    [data] = made["data"]
    assert data["properties"] == {"search_string": "socks", "query": "socks"}
    assert data["page"] == {"url": "https://shop/x"}
    assert data["ad"] == {"callback": "cb", "is_retargeting": True}
    assert data["app"] == {"app_id": "com.shop", "app_name": "Shop", "app_version": "2.1"}
    assert data["limited_data_use"] is True and data["user"] == {"att_status": "AUTHORIZED"}
    web = entry({**event, "properties": {"eventSource": "tv"}})
    assert "app" not in web and body(event | {"properties": {}}, version="v2")["event_source"] == (
        "web"
    )


def test_one_event_mapped_to_several_standard_events() -> None:
    config = {"eventsToStandard": [{"from": "Bought", "to": "Purchase"},
                                   {"from": "bought ", "to": "CompletePayment"},
                                   {"from": "BOUGHT", "to": "Purchase"}]}  # fmt: skip
    v1 = mapped({**TRACK, "event": "Bought"}, **config)
    assert [r.body["event"] for r in v1] == ["Purchase", "CompletePayment"]
    v2 = body({**TRACK, "event": "Bought"}, version="v2", **config)["data"]
    assert [d["event"] for d in v2] == ["Purchase", "CompletePayment"]
    assert "content_type" not in v2[0].get("properties", {})
    assert v2[1]["properties"] == {"content_type": "product"}


def test_the_preview_masks_the_token() -> None:
    [shown] = preview.of_type("tiktok_ads", CONFIG, TRACK, NOW)
    assert shown.headers["Access-Token"] == "****"
    assert TOKEN not in codec.encode(shown).decode()


# --- batching -------------------------------------------------------------------------------


def stored(request: Request) -> Request:
    """A request as the router has it: stored as JSON, read back."""
    return decode_request(codec.encode(request))


def test_test_events_never_travel_in_a_batch() -> None:
    for version in ("v1", "v2"):
        [request] = mapped({**TRACK, "properties": {"testEventCode": "TEST123"}}, version=version)
        assert request.body["test_event_code"] == "TEST123"
        assert TIKTOK_ADS.batch_key(stored(request)) is None


def test_batches_are_per_pixel_token_and_event_source() -> None:
    def key(event: dict[str, Any], **config: Any) -> str | None:
        [request] = mapped(event, **config)
        return TIKTOK_ADS.batch_key(stored(request))

    assert key(TRACK) == key({**TRACK, "event": "Lead", "userId": "u-2"})
    assert key(TRACK) != key(TRACK, pixelCode="OTHER")
    assert key(TRACK) != key(TRACK, accessToken="another-token")
    assert key(TRACK) != key(TRACK, version="v2")
    app = {**TRACK, "properties": {"event_source": "app"}}
    assert key(TRACK, version="v2") != key(app, version="v2")


def test_a_v1_batch_goes_to_the_batch_endpoint() -> None:
    requests = [stored(r) for n in range(3) for r in mapped({**TRACK, "messageId": f"m-{n}"})]
    combined = TIKTOK_ADS.combine(requests)  # type: ignore[misc]
    assert combined.url == "https://business-api.tiktok.com/open_api/v1.3/pixel/batch/"
    assert combined.headers["Access-Token"] == TOKEN
    assert combined.body["pixel_code"] == "CPIXEL123"
    assert [e["event_id"] for e in combined.body["batch"]] == ["m-0", "m-1", "m-2"]
    assert all(e["type"] == "track" and "pixel_code" not in e for e in combined.body["batch"])


# --- answers --------------------------------------------------------------------------------


def answer(code: int, message: str = "OK", **more: Any) -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": "req-1", **more}).encode()


@pytest.mark.parametrize("code", [0, 20001])
def test_success_and_partial_success_are_delivered(code: int) -> None:
    assert TIKTOK_ADS.classify(200, answer(code, data={}), 3) is Verdict.DELIVERED


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (200, 40100, Verdict.RETRY),  # rate limit
        (200, 40001, Verdict.ABORT),  # no permission for the pixel
        (200, 40105, Verdict.ABORT),  # a bad or revoked token: TikTok's client errors
        (200, 40700, Verdict.RETRY),  # TikTok's internal error, retried as RudderStack does
        (200, 50002, Verdict.RETRY),  # TikTok's server errors
        (200, 1, Verdict.RETRY),  # unknown, but no success
        (500, 40999, Verdict.RETRY),  # unknown codes go by the HTTP status
        (403, 12345, Verdict.ABORT),
    ],
)
def test_the_body_code_decides(status: int, code: int, verdict: Verdict) -> None:
    judged = TIKTOK_ADS.classify(status, answer(code, "Too many requests"), 2)
    assert judged == [Judgement(verdict, f"Too many requests (code {code}, request_id req-1)")] * 2


@pytest.mark.parametrize(
    ("status", "verdict"), [(502, Verdict.RETRY), (429, Verdict.RETRY), (404, Verdict.ABORT)]
)
def test_answers_that_are_not_tiktoks_go_by_status(status: int, verdict: Verdict) -> None:
    assert TIKTOK_ADS.classify(status, b"<html>Bad Gateway</html>", 1) is verdict
    assert TIKTOK_ADS.classify(status, b'{"code": true}', 1) is verdict


def verdicts(judged: Verdict | Sequence[Judgement]) -> list[Verdict]:
    assert not isinstance(judged, Verdict)
    return [j.verdict for j in judged]


def test_a_v1_batch_refused_for_one_entry_fails_that_event_only() -> None:
    body_ = answer(40002, "Batch.1.properties.currency: Invalid currency")
    judged = TIKTOK_ADS.classify(200, body_, 3)
    assert isinstance(judged, list)
    assert [j.verdict for j in judged] == [Verdict.RETRY, Verdict.ABORT, Verdict.RETRY]
    assert judged[1].reason == (
        "Batch.1.properties.currency: Invalid currency (code 40002, request_id req-1)"
    )
    assert judged[0].reason is not None and judged[0].reason.startswith("sent again")
    # A request of one event: that event is refused, with TikTok's words.
    assert verdicts(TIKTOK_ADS.classify(200, body_, 1)) == [Verdict.ABORT]


@pytest.mark.parametrize(
    "message", ["Batch.7.event: Not a valid string", "data.1.event_time: Not a valid integer"]
)
def test_a_batch_refused_for_an_event_it_does_not_name_is_split(message: str) -> None:
    # (An index outside the batch, or an Events 2.0 entry, whose entries are not one per job.)
    assert TIKTOK_ADS.classify(200, answer(40002, message), 3) is Verdict.ABORT
    assert 200 in TIKTOK_ADS.split_on  # so the router sends each event again alone
    # Refusals of the whole request for what every event shares are not split.
    shared = TIKTOK_ADS.classify(200, answer(40001, "No permission"), 3)
    assert verdicts(shared) == [Verdict.ABORT] * 3


def test_a_long_message_is_cut() -> None:
    [judged] = TIKTOK_ADS.classify(200, answer(40002, "x" * 5000), 1)  # type: ignore[misc]
    assert judged.reason is not None and len(judged.reason) < 400
