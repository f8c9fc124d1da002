"""The Customer.io mapping: settings, ids and names within Customer.io's limits, devices, objects,
both request shapes, batching and what Customer.io's answers mean (the rules the conformance
cases do not reach)."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Judgement, Request, Unsendable, Verdict
from engine.destinations.customerio import (
    CUSTOMERIO,
    MAX_ACTION_BYTES,
    ULID_ALPHABET,
    batch_key,
    classify,
    combine,
    ulid,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SITE, KEY = "site-1", "key-9f2c1d"
CONFIG = {"siteID": SITE, "apiKey": KEY}
US = "https://track.customer.io"


def settings(**config: Any) -> Any:
    return CUSTOMERIO.parse_settings({**CONFIG, **config})


def made(event: dict[str, Any], **config: Any) -> Request:
    [request] = CUSTOMERIO.map(codec.decode(json.dumps(event)), settings(**config), NOW)
    return request


def refused(event: dict[str, Any], **config: Any) -> str:
    with pytest.raises(Unsendable) as caught:
        made(event, **config)
    return str(caught.value)


# Settings


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"siteID": " "}, "siteID is required"),
        ({"apiKey": ""}, "apiKey is required"),
        ({"siteID": "site:1"}, "without spaces or colons"),
        ({"apiKey": "key 1"}, "without spaces or colons"),
        ({"datacenter": "APAC"}, "datacenter must be EU .* else US; not 'APAC'"),
        ({"datacenter": 1}, "datacenter"),
        ({"trackApi": "v3"}, "trackApi"),
        ({"endpoint": "ftp://proxy"}, "not an http"),
    ],
)
def test_settings_a_user_must_fix_are_refused(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadSettings, match=problem):
        settings(**config)


def test_hosts_by_datacenter_and_endpoint() -> None:
    event = {"type": "identify", "userId": "u1"}
    assert made(event).url == f"{US}/api/v1/customers/u1"
    assert made(event, datacenter="EU").url == "https://track-eu.customer.io/api/v1/customers/u1"
    assert made(event, datacenter=None).url.startswith(US)
    assert made(event, datacenter="").url.startswith(US)
    assert made(event, datacenter=" eu ").url.startswith("https://track-eu.customer.io/")
    # RudderStack's older switch, still in imported configs.
    assert made(event, datacenterEU=True).url.startswith("https://track-eu.customer.io/")
    assert made(event, datacenter="", datacenterEU=True).url.startswith("https://track-eu.")
    assert made(event, datacenterEU=False).url.startswith(US)
    proxied = made(event, datacenter="EU", endpoint="http://127.0.0.1:9/cio/")
    assert proxied.url == "http://127.0.0.1:9/cio/api/v1/customers/u1"


def test_every_setting_has_help() -> None:
    fields = set(CUSTOMERIO.settings.__struct_fields__)
    assert fields == set(CUSTOMERIO.help)
    assert CUSTOMERIO.required == ("siteID", "apiKey")


def test_the_credentials_are_masked_in_a_preview() -> None:
    [shown] = preview.of_type("customerio", CONFIG, {"type": "identify", "userId": "u1"}, NOW)
    assert shown.headers == {"Authorization": "Basic ****"}


# Ids and names


def test_ids_in_paths_are_percent_encoded_and_limited() -> None:
    event = {"type": "track", "userId": "team/ada b", "event": "Paid"}
    assert made(event).url == f"{US}/api/v1/customers/team%2Fada%20b/events"
    assert "150 bytes" in refused({**event, "userId": "é" * 76})


@pytest.mark.parametrize(
    "event",
    [
        {"type": "identify", "userId": ".."},
        {"type": "identify", "userId": "."},
        {"type": "identify", "anonymousId": "a1", "traits": {"email": ".."}},
        {"type": "track", "userId": "..", "event": "Paid"},
        {"type": "track", "event": "Application Uninstalled", "userId": "victim",
         "context": {"device": {"token": ".."}}},
        {"type": "track", "event": "Application Uninstalled", "userId": "victim",
         "context": {"device": {"token": "."}}},
        {"type": "track", "event": "Application Installed", "userId": "..",
         "context": {"device": {"token": "t"}}},
    ],
)  # fmt: skip
def test_ids_and_tokens_a_path_would_resolve_are_refused(event: dict[str, Any]) -> None:
    # `/customers/victim/devices/..` would be sent as DELETE /customers/victim/.
    assert "cannot name anything in Customer.io's paths" in refused(event)


def test_encoded_dots_stay_text_in_paths() -> None:
    uninstall = {"type": "track", "event": "Application Uninstalled", "userId": "%2e%2e",
                 "context": {"device": {"token": "%2E."}}}  # fmt: skip
    assert made(uninstall).url == f"{US}/api/v1/customers/%252e%252e/devices/%252E."
    assert made({"type": "identify", "userId": "..."}).url == f"{US}/api/v1/customers/..."


def test_the_email_identifies_a_person_without_user_id() -> None:
    event = {"type": "identify", "anonymousId": "a1", "traits": {"email": "ada@example.com"}}
    request = made(event)
    assert request.url == f"{US}/api/v1/customers/ada%40example.com"
    assert request.body == {"email": "ada@example.com", "anonymous_id": "a1"}
    assert "userId or an email" in refused({"type": "identify", "anonymousId": "a1"})


def test_identify_lifts_the_address_and_leaves_out_what_is_not_an_attribute() -> None:
    address = {"city": "Lyon", "zip": "69001"}
    traits = {"userId": "u1", "anonymousId": "x", "createdAt": "2026-01-01T00:00:00Z",
              "address": address, "city": "Paris", "dot.name": 1}  # fmt: skip
    request = made({"type": "identify", "userId": "u1", "traits": traits})
    assert request.body == {"city": "Paris", "dot.name": 1, "created_at": 1767225600}


def test_anonymous_names_are_cut_to_100_bytes_without_splitting_a_character() -> None:
    long = "é" * 60  # 120 bytes
    track = made({"type": "track", "anonymousId": "a1", "event": long})
    assert track.url == f"{US}/api/v1/events" and track.body["name"] == "é" * 50
    screen = made({"type": "screen", "anonymousId": "a1", "name": long})
    assert screen.body["name"] == f"Viewed {'é' * 43} Screen"
    assert len(screen.body["name"].encode()) <= 100
    known = made({"type": "track", "userId": "u1", "event": long})
    assert known.body["name"] == long  # only anonymous names are limited


def test_calls_without_what_they_need_are_refused() -> None:
    assert "anonymousId" in refused({"type": "track", "event": "Paid"})
    assert "event name" in refused({"type": "track", "userId": "u1", "event": ""})
    assert "page call needs" in refused({"type": "page", "userId": "u1"})
    assert "screen call needs" in refused({"type": "screen", "userId": "u1"})
    assert "previousId" in refused({"type": "alias", "userId": "u1"})
    assert "nothing to merge" in refused({"type": "alias", "userId": "u1", "previousId": "u1"})
    assert "groupId" in refused({"type": "group", "userId": "u1"})
    assert "unsupported" in refused({"type": "reset", "userId": "u1"})


def test_page_name_falls_back_to_the_url() -> None:
    event = {"type": "page", "userId": "u1", "properties": {"url": "https://x.io/a"}}
    assert made(event).body == {"data": {"url": "https://x.io/a"}, "name": "https://x.io/a",
                                "type": "page"}  # fmt: skip


def test_alias_names_people_by_email_when_the_ids_are_addresses() -> None:
    event = {"type": "alias", "userId": "ada@example.com", "previousId": "anon-1"}
    request = made(event)
    assert (request.method, request.url) == ("POST", f"{US}/api/v1/merge_customers")
    assert request.body == {"primary": {"email": "ada@example.com"}, "secondary": {"id": "anon-1"}}


# Devices


def device_event(name: str, **context: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": name, "properties": {"build": 3},
            "originalTimestamp": "2026-01-01T00:00:10Z", "context": context}  # fmt: skip


def test_device_registration_by_name_or_setting() -> None:
    event = device_event("Push Allowed", device={"token": "t/1", "type": "watchOS"})
    request = made(event, deviceTokenEventName="Push Allowed")
    assert (request.method, request.url) == ("PUT", f"{US}/api/v1/customers/u1/devices")
    assert request.body == {"device": {"build": 3, "id": "t/1", "last_used": 1767225610,
                                       "platform": "ios"}}  # fmt: skip
    assert made(event).url.endswith("/customers/u1/events")  # not the configured name


def test_a_device_event_without_a_token_is_an_ordinary_event() -> None:
    request = made(device_event("Application Opened"))
    assert request.url.endswith("/customers/u1/events")
    assert request.body["name"] == "Application Opened"


def test_uninstall_deletes_the_device_and_needs_its_token() -> None:
    request = made(device_event("Application Uninstalled", device={"token": "a/b"}))
    assert (request.method, request.url) == ("DELETE", f"{US}/api/v1/customers/u1/devices/a%2Fb")
    assert request.body is None
    assert "device.token" in refused(device_event("Application Uninstalled"))


# Objects (group)


def test_group_object_action_relationship_and_type() -> None:
    traits = {"id": "group-trait-id", "action": "destroy", "objectTypeId": 3}
    event = {"type": "group", "groupId": 42, "userId": "u1", "traits": traits,
             "context": {"traits": {"email": "ada@example.com"}}}  # fmt: skip
    request = made(event)
    assert (request.url, batch_key(request) is not None) == (f"{US}/api/v2/batch", True)
    assert request.body == {
        "type": "object", "action": "identify",
        "identifiers": {"object_id": "42", "object_type_id": "3"},
        "attributes": {"id": "group-trait-id", "objectTypeId": 3},
        "cio_relationships": [{"identifiers": {"id": "u1"}}],
    }  # fmt: skip
    by_email = made({**event, "userId": None, "traits": {"action": "delete"}})
    assert by_email.body["action"] == "delete"
    assert by_email.body["cio_relationships"] == [{"identifiers": {"email": "ada@example.com"}}]


def test_an_action_over_32_kb_is_refused_before_sending() -> None:
    event = {"type": "group", "groupId": "g", "traits": {"blob": "x" * MAX_ACTION_BYTES}}
    assert "32768" in refused(event)
    big = {"type": "track", "userId": "u1", "event": "E", "properties": event["traits"]}
    assert "32768" in refused(big, trackApi="v2")


# v2


def test_v2_identifies_people_by_id_then_email_then_anonymous_id() -> None:
    base = {"type": "track", "event": "Paid", "anonymousId": "a1"}
    with_email = {**base, "context": {"traits": {"email": "ada@example.com"}}}
    assert made({**base, "userId": "u1"}, trackApi="v2").body["identifiers"] == {"id": "u1"}
    assert made(with_email, trackApi="v2").body["identifiers"] == {"email": "ada@example.com"}
    assert made(base, trackApi="v2").body["identifiers"] == {"anonymous_id": "a1"}
    assert "userId or an email" in refused({"type": "identify", "anonymousId": "a1"},
                                            trackApi="v2")  # fmt: skip


def test_v2_actions_carry_the_time_and_go_to_the_batch_endpoint() -> None:
    event = {"type": "screen", "userId": "u1", "name": "Home", "timestamp": "2026-01-01T00:00:01Z",
             "properties": {"tab": 2}}  # fmt: skip
    request = made(event, trackApi="v2", datacenter="EU")
    assert (request.method, request.url) == ("POST", "https://track-eu.customer.io/api/v2/batch")
    assert request.headers == {"Authorization": request.headers["Authorization"],
                               "Content-Type": "application/json"}  # fmt: skip
    assert request.body == {"type": "person", "action": "screen", "identifiers": {"id": "u1"},
                            "name": "Viewed Home Screen", "attributes": {"tab": 2},
                            "timestamp": 1767225601}  # fmt: skip


def test_v2_devices() -> None:
    context = {"device": {"token": "t1", "type": "Android", "model": "Pixel"}, "locale": "fr-FR",
               "os": {"name": "Android"}, "app": {"version": ""}}  # fmt: skip
    added = made(device_event("Application Installed", **context), trackApi="v2").body
    assert added == {"type": "person", "action": "add_device", "identifiers": {"id": "u1"},
                     "device": {"token": "t1", "last_used": 1767225610, "platform": "android",
                                "attributes": {"device_os": "Android", "device_model": "Pixel",
                                               "device_locale": "fr-FR", "build": 3}}}  # fmt: skip
    removed = made(device_event("Application Uninstalled", **context), trackApi="v2").body
    assert removed["action"] == "delete_device" and removed["device"] == {"token": "t1"}


# Batching


def test_only_batch_actions_combine_and_the_batch_says_it_is_json() -> None:
    identify = made({"type": "identify", "userId": "u1"})
    assert batch_key(identify) is None
    first = made({"type": "track", "userId": "u1", "event": "A"}, trackApi="v2")
    then = made({"type": "alias", "userId": "u2", "previousId": "u3"}, trackApi="v2")
    other = made({"type": "track", "userId": "u1", "event": "A"}, trackApi="v2", apiKey="k2")
    assert batch_key(first) == batch_key(then) != batch_key(other)
    group = made({"type": "group", "groupId": "g"})
    assert "Content-Type" not in group.headers
    combined = combine([group])
    assert combined.headers["Content-Type"] == "application/json"
    assert combined.body == {"batch": [group.body]}
    assert combine([first, then]).body == {"batch": [first.body, then.body]}


# Answers


def test_a_207_refuses_the_listed_actions_only() -> None:
    body = {"errors": [
        {"batch_index": 2, "reason": "invalid", "field": "name", "message": "is required"},
        {"batch_index": 9, "reason": "out of range"}, {"batch_index": "0"}, "junk",
    ]}  # fmt: skip
    judged = classify(207, json.dumps(body).encode(), 3)
    assert judged == [
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.DELIVERED),
        Judgement(Verdict.ABORT, "reason: invalid, field: name, message: is required"),
    ]
    assert classify(207, b"{}", 2) == [Judgement(Verdict.DELIVERED)] * 2


def test_a_207_too_long_to_read_whole_still_places_its_refusals() -> None:
    cut = b'{"errors":[{"batch_index":1,"reason":"x"},{"batch_index":3,"reason":"y"},{"batch_in'
    judged = classify(207, cut, 4)
    assert isinstance(judged, list)
    assert [j.verdict for j in judged] == [Verdict.DELIVERED, Verdict.ABORT, Verdict.DELIVERED,
                                           Verdict.ABORT]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b"{}", Verdict.DELIVERED),
        (204, b"", Verdict.DELIVERED),
        (429, b"Too Many Requests", Verdict.RETRY),
        # A verdict for the batch, not reasons per event: the router splits it only so.
        (413, b"request body too large", Verdict.ABORT),
        (503, b"<html>", Verdict.RETRY),
        (404, b"", Verdict.ABORT),
        (400, b"<html>bad</html>", Verdict.ABORT),
    ],
)
def test_answers(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(status, body, 2) == verdict


def test_refusals_carry_customer_io_words() -> None:
    meta = json.dumps({"meta": {"error": "attribute value too long"}}).encode()
    assert classify(400, meta, 2) == [Judgement(Verdict.ABORT, "attribute value too long")] * 2
    errors = json.dumps({"meta": {"errors": ["a", "b"]}}).encode()
    assert classify(400, errors, 1) == [Judgement(Verdict.ABORT, "a; b")]
    assert classify(401, b"Unauthorized", 1) == [Judgement(Verdict.ABORT, "Unauthorized")]


# Dedup: Customer.io's event id, a ULID


def _decoded(text: str) -> tuple[int, bytes]:
    """A ULID read back (the spec's layout): its time in ms and its 10 other bytes."""
    value = 0
    for char in text:
        value = value * 32 + ULID_ALPHABET.index(char)
    return value >> 80, (value & ((1 << 80) - 1)).to_bytes(10, "big")


def test_ulid_follows_the_spec_alphabet_and_layout() -> None:
    assert ULID_ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
    # The spec's example: 1469918176385 ms is 01ARYZ6S41.
    assert ulid(1469918176385, bytes(10)) == "01ARYZ6S41" + "0" * 16
    assert ulid(0, bytes(10)) == "0" * 26
    assert ulid((1 << 48) - 1, b"\xff" * 10) == "7" + "Z" * 25  # the largest ULID
    entropy = bytes(range(1, 11))
    made = ulid(1772272800123, entropy + b"ignored")
    assert len(made) == 26 and _decoded(made) == (1772272800123, entropy)
    assert ulid(-5, entropy)[:10] == "0" * 10  # a time before 1970 is clamped
    with pytest.raises(ValueError, match="10 bytes"):
        ulid(0, b"short")


STAMP = "2026-02-28T10:00:00.123Z"
STAMP_MS = 1772272800123


def _event(**fields: Any) -> dict[str, Any]:
    base = {"type": "track", "event": "Paid", "userId": "u1", "messageId": "m-1"}
    return {**base, "timestamp": STAMP, **fields}


def test_an_events_id_is_its_time_and_a_digest_of_its_message_id() -> None:
    made_id = made(_event()).body["id"]
    assert _decoded(made_id) == (STAMP_MS, hashlib.sha256(b"m-1").digest()[:10])
    # Without a time of its own, the time the gateway received it.
    received = _event(receivedAt="2026-02-28T10:00:01Z")
    del received["timestamp"]
    assert _decoded(made(received).body["id"])[0] == STAMP_MS + 877


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_same_event_gets_the_same_id_and_another_a_different_one(api: str) -> None:
    def ids(event: dict[str, Any]) -> str:
        body = made(event, trackApi=api).body
        return str(body["id"])

    first = ids(_event())
    assert ids(_event(properties={"changed": True})) == first
    assert ids(_event(messageId="m-2")) != first
    assert ids(_event(timestamp="2026-02-28T10:00:00.124Z")) != first


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_events_pages_and_screens_carry_an_id_where_customer_io_documents_it(api: str) -> None:
    events = [
        _event(),
        _event(userId=None, anonymousId="anon-1"),  # v1: /api/v1/events
        _event(type="page", name="Pricing"),
        _event(type="screen", name="Home"),
    ]
    for event in events:
        assert _decoded(made(event, trackApi=api).body["id"])[0] == STAMP_MS
    device = {"token": "tok-1", "type": "ios"}
    others = [
        _event(type="identify", traits={"email": "a@example.com"}),
        _event(event="Application Installed", context={"device": device}),
        _event(type="alias", previousId="u0"),
        _event(type="group", groupId="g1"),
    ]
    for event in others:
        body = made(event, trackApi=api).body
        assert "id" not in body, event
        # (v1's device id is the push token, not an event id)
        assert (body.get("device") or {}).get("id") in (None, "tok-1")


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_an_event_without_a_message_id_carries_no_id(api: str) -> None:
    event = _event()
    del event["messageId"]
    assert "id" not in made(event, trackApi=api).body
    assert "id" not in made(_event(messageId=""), trackApi=api).body


def test_a_v2_batch_keeps_each_actions_id() -> None:
    requests = [made(_event(messageId=f"m-{n}"), trackApi="v2") for n in range(3)]
    batch = combine(requests).body["batch"]
    assert [a["id"] for a in batch] == [r.body["id"] for r in requests]
    assert len({a["id"] for a in batch}) == 3
