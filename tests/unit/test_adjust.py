"""The Adjust mapping: settings it refuses, events it cannot send, what it sends, and what
Adjust's answers mean."""

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from engine import codec
from engine.control import preview
from engine.destinations.adjust import ADJUST
from engine.destinations.base import BadSettings, Request, Unsendable, Verdict
from tests.sink import Answer, Arrival
from tests.vendors.adjust import AdjustDouble

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "s2s-very-secret-token"
CONFIG: dict[str, Any] = {
    "appToken": "app123",
    "customMappings": [{"from": "Purchase", "to": "ev0001"}, {"from": "Signup", "to": "ev0002"}],
    "environment": True,
    "s2sToken": TOKEN,
}
SETTINGS = ADJUST.parse_settings(CONFIG)


def track(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "Purchase",
        "context": {"device": {"type": "android", "id": "dev-1", "advertisingId": "ad-1"}},
    }
    event.update(fields)
    return event


def params(event: dict[str, Any], settings: Any = SETTINGS) -> dict[str, str]:
    [request] = ADJUST.map(codec.decode(json.dumps(event)), settings, NOW)
    return request.params


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"customMappings": CONFIG["customMappings"]}, "appToken"),
        ({**CONFIG, "appToken": ""}, "appToken must be"),
        ({**CONFIG, "appToken": "has space"}, "appToken must be"),
        ({**CONFIG, "customMappings": []}, "at least one event name"),
        ({**CONFIG, "customMappings": [{"from": "", "to": ""}]}, "at least one event name"),
        ({**CONFIG, "customMappings": [{"from": "A", "to": ""}]}, "needs an Adjust event token"),
        ({**CONFIG, "customMappings": [{"from": "", "to": "tok"}]}, "has no event name"),
        (
            {**CONFIG, "customMappings": [{"from": "A", "to": "t1"}, {"from": "A", "to": "t2"}]},
            "mapped to two tokens",
        ),
        ({**CONFIG, "partnerParamsKeys": [{"from": "a"}]}, "partnerParamsKeys"),
        ({**CONFIG, "environment": "yes"}, "environment"),
        ({**CONFIG, "s2sToken": "bad token"}, "s2sToken must be"),
        ({**CONFIG, "endpoint": "ftp://example.com"}, "not an http(s) URL"),
        ({**CONFIG, "endpoint": "https://example.com/?a=1"}, "without query"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as refused:
        ADJUST.parse_settings(config)
    assert str(refused.value).startswith("Adjust settings: ")
    assert TOKEN not in str(refused.value)


def test_a_bad_s2s_token_is_not_repeated_in_the_message() -> None:
    with pytest.raises(BadSettings) as refused:
        ADJUST.parse_settings({**CONFIG, "s2sToken": "secret with spaces"})
    assert "secret with spaces" not in str(refused.value)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "identify", "userId": "u"}, "track events only"),
        (track(type="screen"), "track events only"),
        (track(event=None), "no event name"),
        (track(event=12), "no event name"),
        (track(event="Refund"), "no Adjust event token is mapped to event 'Refund'"),
        (track(event="purchase"), "no Adjust event token"),  # names match exactly
        (track(context={}), "neither android nor an Apple OS"),
        (track(context={"device": {"type": "web", "id": "x"}}), "'web'"),
        (track(context={"device": {"type": "ios"}}), "no device id"),
        (
            track(context={"device": {"type": "ios", "advertisingId": "0000-0000"}}),
            "no device id",
        ),
        (track(properties={"revenue": "$20.37gfd"}), "is not a number"),
        (track(properties={"revenue": "NaN"}), "is not a number"),
        (track(properties={"revenue": True}), "is not a number"),
        (track(properties={"revenue": {"amount": 1}}), "is not a number"),
        (track(properties={"revenue": 1e12}), "beyond Adjust's limit"),
    ],
)
def test_events_adjust_cannot_take_are_refused(event: dict[str, Any], message: str) -> None:
    with pytest.raises(Unsendable, match=re.escape(message)) as refused:
        ADJUST.map(codec.decode(json.dumps(event)), SETTINGS, NOW)
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": None},
        {"type": "track", "event": "Purchase", "context": "text", "properties": []},
        track(context={"device": ["android"]}),
        track(context={"device": {"type": 7, "id": "x"}}),
        track(properties={"revenue": "1e999999999"}),
        track(properties={"revenue": "-Infinity"}),
        track(request_ip=["1.2.3.4"], properties="none"),
    ],
)
def test_garbage_is_refused_or_sent_never_an_unexpected_error(event: dict[str, Any]) -> None:
    with contextlib.suppress(Unsendable):
        ADJUST.map(codec.decode(json.dumps(event)), SETTINGS, NOW)


def test_apple_devices_send_idfv_and_idfa_and_a_zero_idfa_is_left_out() -> None:
    device = {"type": "iPadOS", "id": "V-1", "advertisingId": "A-1", "attTrackingStatus": 3,
              "adTrackingEnabled": False}  # fmt: skip
    sent = params(track(context={"device": device}))
    assert (sent["idfv"], sent["idfa"], sent["att_status"]) == ("V-1", "A-1", "3")
    assert sent["tracking_enabled"] == "0" and "android_id" not in sent
    zeroed = {**device, "advertisingId": "00000000-0000-0000-0000-000000000000"}
    sent = params(track(context={"device": zeroed}))
    assert sent["idfv"] == "V-1" and "idfa" not in sent


def test_the_request_carries_tokens_environment_and_security_header() -> None:
    [request] = ADJUST.map(track(request_ip="10.1.2.3"), SETTINGS, NOW)
    assert (request.method, request.url) == ("POST", "https://s2s.adjust.com/event")
    assert request.body is None  # everything travels in the query string
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.params == {
        "s2s": "1", "app_token": "app123", "event_token": "ev0001", "environment": "production",
        "android_id": "dev-1", "gps_adid": "ad-1", "ip_address": "10.1.2.3",
    }  # fmt: skip
    sandbox = ADJUST.parse_settings({**CONFIG, "environment": False, "s2sToken": ""})
    [request] = ADJUST.map(track(), sandbox, NOW)
    assert request.params["environment"] == "sandbox" and "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("revenue", "sent"),
    [
        (20.37566, "20.38"),
        (20.375, "20.38"),
        ("$20.37", "20.37"),
        (" $ 7 ", "7"),
        (48, "48"),
        ("1E+2", "100"),
        (0.001, "0"),
        ("", None),
        (None, None),
    ],
)
def test_revenue_is_rounded_to_cents(revenue: Any, sent: str | None) -> None:
    got = params(track(properties={"revenue": revenue, "x": 1}))
    assert got.get("revenue") == sent
    assert got.get("currency") == ("USD" if sent else None)


def test_callback_params_flatten_every_property_but_money_as_text() -> None:
    props = {"revenue": 5, "currency": "EUR", "n": 1.50, "ok": False, "none": None, "empty": {},
             "list": [{"k": "v"}, [1, 2]], "deep": {"a": {"b": "c"}}}  # fmt: skip
    got = params(track(properties=props))
    assert (got["revenue"], got["currency"]) == ("5", "EUR")
    assert json.loads(got["callback_params"]) == {
        "n": "1.5", "ok": "false", "none": "null", "empty": "{}",
        "list[0].k": "v", "list[1][0]": "1", "list[1][1]": "2", "deep.a.b": "c",
    }  # fmt: skip


def test_numbers_in_callback_params_keep_their_written_form() -> None:
    event = codec.decode(b'{"type":"track","event":"Purchase","properties":{"p":1.50,"q":1e3},'
                         b'"context":{"device":{"type":"android","id":"d"}}}')  # fmt: skip
    [request] = ADJUST.map(event, SETTINGS, NOW)
    assert json.loads(request.params["callback_params"]) == {"p": "1.50", "q": "1e3"}


def test_deeply_nested_properties_do_not_break_the_mapping() -> None:
    nested = "[" * 900 + "1" + "]" * 900
    event = codec.decode(
        '{"type":"track","event":"Purchase","context":{"device":{"type":"android","id":"d"}},'
        f'"properties":{{"a":{nested}}}}}'
    )
    [request] = ADJUST.map(event, SETTINGS, NOW)
    assert json.loads(request.params["callback_params"]) == {"a" + "[0]" * 900: "1"}


def test_partner_params_take_the_chosen_properties() -> None:
    settings = ADJUST.parse_settings({**CONFIG, "partnerParamsKeys": [
        {"from": "plan", "to": "partner_plan"}, {"from": "address.city", "to": "city"},
        {"from": "missing", "to": "nothing"}, {"from": "n", "to": "number"},
    ]})  # fmt: skip
    got = params(track(properties={"plan": "pro", "address": {"city": "Oslo"}, "n": 3}), settings)
    partner = {"partner_plan": "pro", "city": "Oslo", "number": "3"}
    assert json.loads(got["partner_params"]) == partner


def test_no_properties_no_callback_params_nor_revenue() -> None:
    got = params(track())
    assert not {"callback_params", "partner_params", "revenue", "currency"} & set(got)


def test_endpoint_replaces_the_host_and_keeps_the_path() -> None:
    settings = ADJUST.parse_settings({**CONFIG, "endpoint": "http://127.0.0.1:9000/adjust/"})
    [request] = ADJUST.map(track(), settings, NOW)
    assert request.url == "http://127.0.0.1:9000/adjust/event"


def test_previews_mask_the_s2s_token() -> None:
    [shown] = preview.of_type("adjust", CONFIG, track())
    assert shown.headers["Authorization"] == "Bearer ****"
    assert ADJUST.secrets(CONFIG) == [TOKEN]


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b'{"status": "OK"}', Verdict.DELIVERED),
        (200, b"OK", Verdict.DELIVERED),
        (200, b"\xff\xfe garbage", Verdict.DELIVERED),
        (400, b'{"error": "Event request failed (Invalid app token)"}', Verdict.ABORT),
        (400, b'{"error": "Event request failed (Ignoring event, earlier unique event)"}',
         Verdict.ABORT),
        (401, b'{"error": "Event request failed (Authorization token is missing)"}',
         Verdict.ABORT),
        (403, b'{"error": "Event request failed (App is inactive)"}', Verdict.ABORT),
        (404, b'{"error": "Event request failed (Device not found)"}', Verdict.ABORT),
        (413, b"", Verdict.ABORT),
        (451, b'{"error": "Event request failed (Device is opted out)"}', Verdict.ABORT),
        (429, b"", Verdict.RETRY),
        (500, b'{"error": "Event request failed (Internal error)"}', Verdict.RETRY),
        (503, b"<html>unavailable</html>", Verdict.RETRY),
    ],
)  # fmt: skip
def test_answers_are_classified(status: int, body: bytes, verdict: Verdict) -> None:
    assert ADJUST.classify(status, body, 1) is verdict


def test_the_vendor_double_takes_what_the_mapping_sends() -> None:
    adjust = AdjustDouble("app123", frozenset({"ev0001"}), s2s_token=TOKEN)
    [request] = ADJUST.map(track(properties={"revenue": 3, "a": {"b": 1}}), SETTINGS, NOW)

    def answer(request: Request) -> Answer:
        path = urlsplit(request.url).path
        return adjust(Arrival(request.method, path, request.params, request.headers, b"", 0.0))

    assert answer(request).status == 200
    assert adjust.accepted == [request.params]
    no_device = {k: v for k, v in request.params.items() if k not in ("android_id", "gps_adid")}
    refused = answer(Request("POST", request.url, request.headers, no_device))
    assert (refused.status, json.loads(refused.body)) == (
        400, {"error": "Event request failed (Device ID is missing)"}
    )  # fmt: skip
    assert answer(Request("POST", request.url, {}, request.params)).status == 401
