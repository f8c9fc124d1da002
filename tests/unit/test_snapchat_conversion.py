"""The Snapchat Conversions mapping: settings, event names, refusals, limits, batching and what
Snap's answers mean (rules the conformance cases leave out)."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.snapchat_conversion import (
    SNAPCHAT_CONVERSION,
    SnapchatSettings,
    extinfo,
)

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
TOKEN = "snap-token-7b2d90e1"
PLUGIN = SNAPCHAT_CONVERSION


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config(**more: Any) -> dict[str, Any]:
    return {"apiKey": TOKEN, "pixelId": "pixel-1", "snapAppId": "snap-app-1", "appId": "app-1",
            **more}  # fmt: skip


def settings(**more: Any) -> Any:
    return PLUGIN.parse_settings(config(**more))


def track(
    event: str = "Order Completed", ago: timedelta = timedelta(hours=1), **fields: Any
) -> dict[str, Any]:
    return {
        "type": "track", "event": event, "userId": "u1", "messageId": "m-1", "channel": "web",
        "timestamp": (NOW - ago).isoformat(), "context": {"traits": {"email": "a@b.co"}},
        **fields,
    }  # fmt: skip


def mapped(event: dict[str, Any], **more: Any) -> list[Request]:
    # Through the codec, as the pipeline has events (fractional numbers as msgspec.Raw).
    decoded = codec.decode(json.dumps(event))
    return PLUGIN.map(decoded, settings(**more), NOW)


def body(event: dict[str, Any], **more: Any) -> dict[str, Any]:
    [request] = mapped(event, **more)
    shown: dict[str, Any] = json.loads(codec.encode(request.body))
    return shown["data"][0] if more.get("apiVersion") == "newApi" else shown


# Settings


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"apiKey": ""}, "apiKey must not be empty"),
        ({"apiKey": "two words"}, "apiKey must be a single word"),
        ({"pixelId": "", "snapAppId": " "}, "set pixelId"),
        ({"pixelId": "a/../b"}, "pixelId"),
        ({"snapAppId": "x?y=1"}, "snapAppId"),
        ({"appId": " "}, "snapAppId is set without appId: app events need both"),
        ({"pixelId": None, "appId": None}, "snapAppId is set without appId"),
        ({"apiVersion": "v3"}, "apiVersion"),
        ({"deduplicationKey": "properties..id"}, "deduplicationKey"),
        ({"rudderEventsToSnapEvents": [{"from": "Paid", "to": "PAYMENT"}]}, "not a Snapchat"),
        ({"endpoint": "https://proxy.example/snap?x=1"}, "endpoint"),
    ],
)
def test_settings_a_user_must_fix_are_refused_with_the_reason(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadSettings, match=message) as refused:
        PLUGIN.parse_settings(config(**given))
    assert TOKEN not in str(refused.value)


def test_blank_ids_count_as_unset_and_every_setting_has_help() -> None:
    parsed = settings(snapAppId="", appId="  ")
    assert (parsed.snapAppId, parsed.appId, parsed.apiVersion) == (None, None, "legacyApi")
    info = msgspec.inspect.type_info(SnapchatSettings)
    assert isinstance(info, msgspec.inspect.StructType)
    assert {f.encode_name for f in info.fields} == set(PLUGIN.help)
    assert PLUGIN.required == ("apiKey",)


# Calls and event names


def test_only_track_and_page_are_taken() -> None:
    assert frozenset({"track", "page"}) == PLUGIN.supported_types
    with pytest.raises(Unsendable, match="does not take 'identify'"):
        mapped({"type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}})


@pytest.mark.parametrize(
    ("name", "snap"),
    [
        ("Order Completed", "PURCHASE"),
        ("  product   added  ", "ADD_CART"),
        ("level_complete", "LEVEL_COMPLETE"),
        ("PURCHASE", "PURCHASE"),
        ("Start Trial", "START_TRIAL"),
    ],
)
def test_event_names_are_segment_rudderstack_or_snap_names(name: str, snap: str) -> None:
    assert body(track(name))["event_type"] == snap


def test_a_name_snap_does_not_know_is_refused_unless_mapped() -> None:
    with pytest.raises(Unsendable, match="'Booked' is not one of Snapchat's events"):
        mapped(track("Booked"))
    rows = [{"from": "booked", "to": "RESERVE"}, {"from": "Booked", "to": "custom_event_1"},
            {"from": "Booked", "to": "reserve"}, {"from": "Other", "to": "SAVE"}]  # fmt: skip
    made = mapped(track("Booked"), rudderEventsToSnapEvents=rows)
    # One conversion per distinct Snap event: one job each, so a batch holds one per job.
    assert [r.body["event_type"] for r in made] == ["RESERVE", "CUSTOM_EVENT_1"]


def test_page_is_page_view_with_its_url_on_the_web_only() -> None:
    page = {"type": "page", "userId": "u1", "channel": "web", "timestamp": NOW.isoformat(),
            "properties": {"url": "https://x.example/p"},
            "context": {"traits": {"email": "a@b.co"}}}  # fmt: skip
    sent = body(page)
    assert (sent["event_type"], sent["page_url"]) == ("PAGE_VIEW", "https://x.example/p")
    assert "page_url" not in body({**page, "channel": "server"})
    assert body({**page, "channel": "server"})["event_conversion_type"] == "OFFLINE"


def test_the_conversion_type_property_wins_over_the_channel_and_needs_its_ids() -> None:
    event = track(properties={"eventConversionType": "mobile_app"})
    assert body(event)["event_conversion_type"] == "MOBILE_APP"
    with pytest.raises(Unsendable, match="need snapAppId and appId"):
        mapped(event, snapAppId="", appId="")
    with pytest.raises(Unsendable, match="web events need pixelId"):
        mapped(track(), pixelId="")


# The person and the device


def test_values_are_normalised_and_hashed_and_hashes_are_kept() -> None:
    hashed = sha("x@y.co").upper()
    traits = {"email": hashed, "phone": "+1 (555) 010-0199", "firstName": " Ada ",
              "middleName": "Ki", "address": {"city": "New York", "zip": "10001-1234"}}  # fmt: skip
    sent = body(track(context={"traits": traits}))
    assert sent["hashed_email"] == hashed.lower()
    assert sent["hashed_phone_number"] == sha("15550100199")
    assert sent["hashed_first_name_sha"] == sha("ada")
    assert sent["hashed_middle_name_sha"] == sha("ki")
    assert (sent["hashed_city_sha"], sent["hashed_zip"]) == (sha("newyork"), sha("10001"))
    v3 = body(track(context={"traits": {**traits, "gender": "Female"}}), apiVersion="newApi")
    assert (v3["user_data"]["em"], v3["user_data"]["ge"]) == (hashed.lower(), sha("f"))


def test_an_event_without_anything_to_match_a_person_by_is_refused() -> None:
    bare = track(context={"traits": {"email": "not an address"}, "ip": "10.0.0.1"})
    for version in ("legacyApi", "newApi"):
        with pytest.raises(Unsendable, match="an email, a phone number, an advertising id"):
            mapped(bare, apiVersion=version)
    with_agent = {**bare, "context": {**bare["context"], "userAgent": "Agent/1.0"}}
    sent = body(with_agent)
    assert "hashed_email" not in sent and sent["hashed_ip_address"] == sha("10.0.0.1")
    assert sent["user_agent"] == "agent/1.0"


def test_the_idfv_is_an_apple_devices_only() -> None:
    device = {"id": "dev-1", "advertisingId": "AD-1"}
    apple = body(track(context={"device": {**device, "type": "iOS"}}), apiVersion="newApi")
    other = body(track(context={"device": {**device, "type": "android"}}), apiVersion="newApi")
    assert apple["user_data"]["idfv"] == "dev-1" and "idfv" not in other["user_data"]
    assert other["user_data"]["madid"] == "AD-1"


def test_extinfo_has_snaps_sixteen_facts_and_a_zone_abbreviation() -> None:
    event = {"context": {"timezone": "America/New_York", "screen": {"density": 3},
                         "app": {"version": "2.1", "build": "210"}}}  # fmt: skip
    info = extinfo(event, NOW)
    assert len(info) == 16 and info[0] == "a2" and info[2:4] == ["2.1", "210"]
    assert (info[7], info[11], info[15]) == ("EST", "3", "America/New_York")
    for zone in ("../../etc/passwd", "Not/A_Zone", ""):
        assert extinfo({"context": {"timezone": zone}}, NOW)[7] == ""


# Limits and properties


@pytest.mark.parametrize(("version", "days"), [("legacyApi", 37), ("newApi", 7)])
def test_events_older_than_snap_takes_are_refused(version: str, days: int) -> None:
    mapped(track(ago=timedelta(days=days) - timedelta(minutes=1)), apiVersion=version)
    with pytest.raises(Unsendable, match=f"up to {days} days old"):
        mapped(track(ago=timedelta(days=days, minutes=1)), apiVersion=version)


def test_a_time_in_the_future_is_sent_as_it_is() -> None:
    # RudderStack sends it too; what Snap does with it is Snap's to say.
    later = NOW + timedelta(days=2)
    assert body(track(ago=-timedelta(days=2)))["timestamp"] == str(int(later.timestamp()))


def test_the_time_falls_back_to_received_at() -> None:
    event = track(receivedAt="2026-01-20T10:00:00Z")
    del event["timestamp"]
    assert body(event)["timestamp"] == str(int(datetime(2026, 1, 20, 10, tzinfo=UTC).timestamp()))


def test_properties_of_the_wrong_type_are_left_out_rather_than_fail_a_batch() -> None:
    props = {"price": {"amount": 3}, "revenue": "12.50", "currency": ["EUR"],
             "products": "many", "brands": "acme", "quantity": True}  # fmt: skip
    sent = body(track(properties=props))
    assert sent["price"] == "12.50"
    assert not {"currency", "item_ids", "brands", "number_items"} & set(sent)


def test_list_events_sum_their_products_when_no_price_is_given() -> None:
    products = [{"product_id": "a", "price": 2.5, "quantity": 2}, {"product_id": 7, "price": "1"},
                {"product_id": "c"}, "junk"]  # fmt: skip
    sent = body(track(properties={"products": products}))
    assert (sent["item_ids"], sent["price"]) == (["a", "7", "c"], "6")
    v3 = body(track(properties={"products": products}), apiVersion="newApi")["custom_data"]
    assert v3["contents"] == [{"id": "a", "item_price": 2.5, "quantity": 2},
                              {"id": "7", "item_price": "1"}, {"id": "c"}]  # fmt: skip


def test_the_dedup_id_comes_from_the_configured_path() -> None:
    event = track(properties={"order_id": "o-1", "ref": {"id": 99}})
    assert "client_dedup_id" not in body(event)
    assert body(event, enableDeduplication=True)["client_dedup_id"] == "m-1"
    dedup = {"enableDeduplication": True, "deduplicationKey": "properties.ref.id"}
    assert body(event, **dedup)["client_dedup_id"] == "99"
    assert body(event, apiVersion="newApi")["event_id"] == "o-1"
    assert body(event, apiVersion="newApi", **dedup)["event_id"] == "99"


def test_limited_data_use_when_tracking_was_denied() -> None:
    denied = track(context={"traits": {"email": "a@b.co"}, "device": {"attTrackingStatus": 2}})
    assert body(denied)["data_use"] == "['lmu']"
    assert "data_use" not in body(track())


# Batching


def test_v2_conversions_combine_into_an_array_whatever_their_conversion_type() -> None:
    [web] = mapped(track())
    [app] = mapped(track(channel="mobile", userId="u2"))
    assert PLUGIN.batch_key(web) == PLUGIN.batch_key(app)
    combined = PLUGIN.combine([web, app])  # type: ignore[misc]
    assert combined.body == [web.body, app.body]
    assert combined.headers["Authorization"] == f"Bearer {TOKEN}"
    [other] = PLUGIN.map(track(), settings(apiKey="another-token"), NOW)
    assert PLUGIN.batch_key(other) != PLUGIN.batch_key(web)


def test_v3_events_combine_per_pixel_or_app_into_one_data_list() -> None:
    [web] = mapped(track(), apiVersion="newApi")
    [web2] = mapped(track(userId="u2"), apiVersion="newApi")
    [app] = mapped(track(channel="mobile"), apiVersion="newApi")
    assert (web.url, app.url) == ("https://tr.snapchat.com/v3/pixel-1/events",
                                  "https://tr.snapchat.com/v3/snap-app-1/events")  # fmt: skip
    assert PLUGIN.batch_key(web) == PLUGIN.batch_key(web2) != PLUGIN.batch_key(app)
    combined = PLUGIN.combine([web, web2])  # type: ignore[misc]
    assert combined.body == {"data": [web.body["data"][0], web2.body["data"][0]]}
    assert combined.params == {"access_token": TOKEN}
    assert PLUGIN.batch_size == 2000


def test_the_v3_token_in_the_url_is_masked_in_a_preview() -> None:
    [shown] = preview.of_type("snapchat_conversion", config(apiVersion="newApi"), track(), NOW)
    assert shown.params == {"access_token": "****"}
    assert TOKEN not in codec.encode(shown).decode()


# Answers


@pytest.mark.parametrize(
    ("status", "answer", "judged"),
    [
        (200, b'{"status":"SUCCESS"}', Verdict.DELIVERED),
        (200, b"", Verdict.DELIVERED),
        (500, b"<html>oops</html>", Verdict.RETRY),
        (401, b"Unauthorized", Verdict.ABORT),
        (
            429,
            b'{"status":"FAILED","reason":"Too many requests"}',
            [Judgement(Verdict.RETRY, "Too many requests")] * 2,
        ),
        # One bad conversion refuses a batch, naming none: judged whole, the router splits it.
        (400, b'{"status":"FAILED","reason":"Invalid pixel_id"}', Verdict.ABORT),
        (413, b'{"status":"FAILED","reason":"Too large"}', Verdict.ABORT),
        (
            403,
            b'{"error":{"message":"Token has no access to this pixel"}}',
            [Judgement(Verdict.ABORT, "Token has no access to this pixel")] * 2,
        ),
    ],
)
def test_answers(status: int, answer: bytes, judged: Any) -> None:
    assert PLUGIN.classify(status, answer, 2) == judged


def test_a_conversion_refused_alone_carries_snaps_reason() -> None:
    assert 400 in PLUGIN.split_on
    refused = b'{"status":"FAILED","reason":"conversion 0: pixel_id is not a pixel"}'
    assert PLUGIN.classify(400, refused, 1) == [
        Judgement(Verdict.ABORT, "conversion 0: pixel_id is not a pixel")
    ]


def test_a_long_reason_is_cut() -> None:
    reason = "x" * 5000
    [judged] = PLUGIN.classify(400, json.dumps({"reason": reason}).encode(), 1)  # type: ignore[misc]
    assert judged.reason == "x" * 300
