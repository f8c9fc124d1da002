"""The Klaviyo mapping: settings, refusals, subscriptions, batching of subscription jobs and what
Klaviyo's answers mean (the rules the conformance cases do not reach)."""

import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine import codec
from engine.control import preview
from engine.destinations.base import (
    BadSettings,
    Judgement,
    LookupFailed,
    Request,
    Unsendable,
    Verdict,
)
from engine.destinations.klaviyo import KLAVIYO, MAX_PROFILES, resolve
from engine.pipeline.delivery.lookups import Given

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "pk_test_5c1e0a9b7d"
BULK = "/api/profile-subscription-bulk-create-jobs"


def settings(**config: Any) -> Any:
    return KLAVIYO.parse_settings({"privateApiKey": KEY, "apiVersion": "v3", **config})


def made(event: dict[str, Any], **config: Any) -> list[Request]:
    return KLAVIYO.map(codec.decode(json.dumps(event)), settings(**config), NOW)


def identify(subscribe: Any = True, **traits: Any) -> dict[str, Any]:
    options = {"listId": "L1", "subscribe": subscribe} if subscribe is not None else {}
    return {
        "type": "identify",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "m-1",
        "context": {"traits": {"email": "ada@example.com", "properties": options, **traits}},
    }


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Paid", "userId": "u1", "messageId": "m-1",
            "timestamp": "2026-02-28T10:00:00.123+01:00",
            "context": {"traits": {"email": "ada@example.com"}}, **fields}  # fmt: skip


def group(subscribe: Any = True, **traits: Any) -> dict[str, Any]:
    return {"type": "group", "userId": "u1", "groupId": "L9",
            "traits": {"subscribe": subscribe} if subscribe is not None else {},
            "context": {"traits": {"email": "ada@example.com", "phone": "+33612345678",
                                   **traits}}}  # fmt: skip


def profiles(request: Request) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = request.body["data"]["attributes"]["profiles"]["data"]
    return found


# Settings


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "privateApiKey"),
        ({"privateApiKey": "  "}, "privateApiKey"),
        ({"privateApiKey": "pk_1 2"}, "without spaces"),
        ({"privateApiKey": " Ab12Cd "}, "looks like the public key (site ID); use a private API"),
        ({"privateApiKey": KEY, "apiVersion": "v9"}, "apiVersion"),
        ({"privateApiKey": KEY, "consent": ["email", "push"]}, "consent"),
        ({"privateApiKey": KEY, "endpoint": "ftp://x"}, "not an http(s) URL"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)):
        KLAVIYO.parse_settings(config)


def test_spaces_pasted_around_the_key_are_dropped() -> None:
    [request] = KLAVIYO.map(track(), settings(privateApiKey=f"  {KEY}\n"), NOW)
    assert request.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"


def test_every_setting_has_help_and_the_private_key_is_the_secret() -> None:
    fields = msgspec.structs.fields(KLAVIYO.settings)
    assert {f.name for f in fields} == set(KLAVIYO.help)
    assert KLAVIYO.required == ("privateApiKey",)
    assert KLAVIYO.secret_keys == ("privateApiKey",)


def test_an_absent_or_null_version_is_rudderstacks_v1() -> None:
    for config in ({"privateApiKey": KEY}, {"privateApiKey": KEY, "apiVersion": None}):
        [request] = KLAVIYO.map(track(), KLAVIYO.parse_settings(config), NOW)
        assert request.headers["revision"] == "2023-02-22"
        assert request.body["data"]["attributes"]["metric"] == {"name": "Paid"}


def test_the_endpoint_setting_replaces_the_host_and_the_key_is_masked_in_previews() -> None:
    [request] = made(track(), endpoint="http://127.0.0.1:9/klaviyo/")
    assert request.url == "http://127.0.0.1:9/klaviyo/api/events"
    [shown] = preview.of_type("klaviyo", {"privateApiKey": KEY, "apiVersion": "v2"}, track())
    assert shown.headers["Authorization"] == "Klaviyo-API-Key ****"
    assert KEY not in codec.encode(shown).decode()


# Call types and refusals


def test_page_and_alias_are_not_klaviyo_calls() -> None:
    assert frozenset({"page", "alias"}).isdisjoint(KLAVIYO.supported_types)
    assert {"identify", "track", "screen", "group"} <= KLAVIYO.supported_types


# v1 identify: the profile's id is found when the request is sent


PROFILE_ID = "01GW3PHVY0MTCDGS0A1612HARX"
RS_TRAITS = {
    "firstName": "Test", "lastName": "Rudderlabs", "email": "test@rudderstack.com",
    "phone": "+12 345 578 900", "userId": "user@1", "title": "Developer",
    "organization": "Rudder", "city": "Tokyo", "region": "Kanto", "country": "JP",
    "zip": "100-0001", "Flagged": False, "Residence": "Shibuya", "street": "63, Shibuya",
    "properties": {"listId": "XUepkK", "subscribe": True, "consent": ["email", "sms"]},
}  # fmt: skip
RS_PROFILE = {
    "external_id": "user@1", "email": "test@rudderstack.com", "first_name": "Test",
    "last_name": "Rudderlabs", "phone_number": "+12 345 578 900", "title": "Developer",
    "organization": "Rudder",
    "location": {"city": "Tokyo", "region": "Kanto", "country": "JP", "zip": "100-0001",
                 "address1": "63, Shibuya"},
    "properties": {"Flagged": False, "Residence": "Shibuya", "street": "63, Shibuya"},
}  # fmt: skip


def legacy_identify() -> dict[str, Any]:
    return {"type": "identify", "userId": "user@1", "anonymousId": "a1",
            "context": {"traits": RS_TRAITS}}  # fmt: skip


def created(status: int, body: Any) -> Given:
    url = "https://a.klaviyo.com/api/profiles"
    return Given([{"method": "POST", "endpoint": url, "request_body": {
        "data": {"type": "profile", "attributes": RS_PROFILE}},
        "response": {"status": status, "body": body}}])  # fmt: skip


async def sent(lookups: Given, config: dict[str, Any] | None = None) -> list[Request]:
    dest = preview.unsaved("klaviyo", config or {"privateApiKey": KEY})
    return await preview.completed(dest, legacy_identify(), NOW, lookups)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (201, {"data": {"type": "profile", "id": PROFILE_ID, "attributes": {}}}),
        (409, {"errors": [{"status": 409, "code": "duplicate_profile",
                           "meta": {"duplicate_profile_id": PROFILE_ID}}]}),
    ],
)  # fmt: skip
async def test_an_identify_without_api_version_updates_the_profile_it_creates_or_finds(
    status: int, body: Any
) -> None:
    """An imported config without apiVersion is v1 (RudderStack's reading): the profile is
    created (201) or found (409), then updated by id — after a 201 too (RudderStack does the
    same unless its server suppresses the update)."""
    [stored, job] = KLAVIYO.map(legacy_identify(), KLAVIYO.parse_settings({"privateApiKey": KEY}),
                                NOW)  # fmt: skip
    assert (stored.method, stored.url) == ("PATCH", "https://a.klaviyo.com/api/profiles")
    assert stored.hints and stored.body == {"data": {"type": "profile", "attributes": RS_PROFILE}}
    profile, subscription = await sent(created(status, body))
    assert (profile.method, profile.url) == (
        "PATCH", f"https://a.klaviyo.com/api/profiles/{PROFILE_ID}")  # fmt: skip
    assert profile.body == {"data": {"type": "profile", "id": PROFILE_ID,
                                     "attributes": RS_PROFILE}}  # fmt: skip
    assert profile.headers["revision"] == "2023-02-22" and profile.hints == {}
    assert subscription.body == job.body == {"data": {
        "type": "profile-subscription-bulk-create-job", "attributes": {
            "list_id": "XUepkK", "subscriptions": [{
                "email": "test@rudderstack.com", "phone_number": "+12 345 578 900",
                "channels": {"email": ["MARKETING"], "sms": ["MARKETING"]}}]}}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "raised", "said"),
    [
        (409, {"errors": [{"status": 409, "meta": {}}]}, LookupFailed, "naming no profile id"),
        (201, {}, LookupFailed, "naming no profile id"),
        (503, None, LookupFailed, "HTTP 503"),
        (400, {"errors": [{"detail": "Invalid phone number format.",
                           "source": {"pointer": "/data/attributes/phone_number"}}]},
         Unsendable, "HTTP 400 to creating the profile: Invalid phone number format. "
         "(/data/attributes/phone_number)"),
    ],
)  # fmt: skip
async def test_a_profile_create_without_an_id_is_retried_and_a_refusal_fails_the_event(
    status: int, body: Any, raised: type[Exception], said: str
) -> None:
    [stored, _] = made(legacy_identify(), apiVersion="v1")
    with pytest.raises(raised, match=re.escape(said)):
        await resolve(stored, settings(apiVersion="v1"), created(status, body))


async def test_a_preview_does_not_create_the_profile() -> None:
    dest = preview.unsaved("klaviyo", {"privateApiKey": KEY})
    with pytest.raises(preview.PreviewError, match="a preview changes nothing at the vendor"):
        await preview.completed(dest, legacy_identify(), NOW)


async def test_other_requests_are_sent_as_stored() -> None:
    for request in [
        *made(track()),
        *made(track(), apiVersion="v1"),
        made(identify(), consent=["email"])[1],
    ]:
        assert await resolve(request, settings(), Given([])) is request


def test_a_v1_identify_subscribes_only_when_asked_to() -> None:
    event = legacy_identify()
    event["context"]["traits"] = {**RS_TRAITS, "properties": {"listId": "L", "subscribe": False}}
    [profile] = made(event, apiVersion="v1")
    assert profile.method == "PATCH"
    with pytest.raises(Unsendable, match="names no user"):
        made({"type": "identify", "traits": {"plan": "pro"}}, apiVersion="v1")


@pytest.mark.parametrize("phone", ["9112340375", "+0112340375", "+12", "+1234567890123456"])
def test_a_profile_phone_must_be_e164(phone: str) -> None:
    with pytest.raises(Unsendable, match=r"E\.164"):
        made(identify(subscribe=None, phone=phone))
    with pytest.raises(Unsendable, match=r"E\.164"):
        made(track(context={"traits": {"phone": phone}}), apiVersion="v2")


def test_a_phone_written_with_spaces_and_dashes_is_sent_as_written() -> None:
    [request] = made(identify(subscribe=None, phone="+33 6-12-34-56-78"))
    assert request.body["data"]["attributes"]["phone_number"] == "+33 6-12-34-56-78"


def test_enforce_email_as_primary_needs_an_email_or_phone() -> None:
    event = track(context={"traits": {"plan": "pro"}})
    for version in ("v1", "v2", "v3"):
        with pytest.raises(Unsendable, match="enforceEmailAsPrimary"):
            made(event, apiVersion=version, enforceEmailAsPrimary=True)
    [request] = made(track(), enforceEmailAsPrimary=True)
    profile = request.body["data"]["attributes"]["profile"]["data"]["attributes"]
    assert "external_id" not in profile and profile["properties"]["_id"] == "u1"


def test_an_event_naming_no_user_is_refused() -> None:
    with pytest.raises(Unsendable, match="names no user"):
        made({"type": "track", "event": "Paid", "properties": {}})


@pytest.mark.parametrize(
    "event",
    [
        track(event=None),
        track(event="  "),
        track(event=7),
        {"type": "screen", "userId": "u1", "properties": {}},
    ],
)
def test_events_need_a_text_name(event: dict[str, Any]) -> None:
    with pytest.raises(Unsendable, match="event name"):
        made(event)


@pytest.mark.parametrize("value", [{"price": 9.99}, "lots", True])
def test_a_value_that_is_no_number_is_refused(value: Any) -> None:
    with pytest.raises(Unsendable, match=r"properties\.revenue must be a number"):
        made(track(properties={"revenue": value}))


def test_event_fields_value_time_dedup_id_and_a_screen_name() -> None:
    [request] = made(track(properties={"total": "12.5", "currency": "EUR", "sku": "A"}))
    attributes = request.body["data"]["attributes"]
    assert attributes["value"] == 12.5 and attributes["value_currency"] == "EUR"
    assert attributes["properties"] == {"sku": "A"}
    assert attributes["time"] == "2026-02-28T09:00:00.123Z"
    assert attributes["unique_id"] == "m-1"
    screen = {
        "type": "screen",
        "name": "Home",
        "userId": "u1",
        "receivedAt": "2026-02-28T10:00:00Z",
    }
    [request] = made(screen)
    attributes = request.body["data"]["attributes"]
    assert attributes["metric"]["data"]["attributes"]["name"] == "Home"
    assert attributes["time"] == "2026-02-28T10:00:00.000Z"  # the gateway's time, lacking one


def test_flatten_properties_dots_nested_objects_and_keeps_plain_arrays() -> None:
    event = track(properties={"cart": {"items": [{"sku": "A"}], "tags": ["x"], "n": {}}})
    [request] = made(event, flattenProperties=True)
    assert request.body["data"]["attributes"]["properties"] == {
        "cart.items[0].sku": "A",
        "cart.tags": ["x"],
        "cart.n": {},
    }


def test_patch_properties_take_their_traits_out_of_the_custom_properties() -> None:
    event = identify(subscribe=None, tags="vip", old="x", plan="pro")
    event["integrations"] = {"klaviyo": {"fieldsToAppend": ["tags"], "fieldsToUnset": ["old"]}}
    [request] = made(event)
    data = request.body["data"]
    assert data["meta"]["patch_properties"] == {"append": {"tags": "vip"}, "unset": ["old"]}
    assert data["attributes"]["properties"] == {"plan": "pro"}


# Subscriptions


def test_identify_without_a_list_sends_the_profile_only_whatever_its_flag() -> None:
    event = identify(subscribe="maybe")
    event["context"]["traits"]["properties"].pop("listId")
    [request] = made(event)
    assert request.url.endswith("/api/profile-import")
    with pytest.raises(Unsendable, match="must be true or false"):
        made(identify(subscribe="maybe"))


def test_identify_subscribes_to_the_configured_list_with_text_flags() -> None:
    event = identify(subscribe="false")
    event["context"]["traits"]["properties"].pop("listId")
    _, job = made(event, listId="L-conf", consent=["email"])
    assert job.url.endswith("/api/profile-subscription-bulk-delete-jobs")
    assert job.body["data"]["relationships"]["list"]["data"]["id"] == "L-conf"
    assert profiles(job)[0]["attributes"]["subscriptions"] == {
        "email": {"marketing": {"consent": "UNSUBSCRIBED"}}
    }


def test_v3_needs_a_consent_channel_the_user_has_an_address_for() -> None:
    with pytest.raises(Unsendable, match="no consent channel"):
        made(identify())  # no consent anywhere
    with pytest.raises(Unsendable, match="no consent channel"):
        made(identify(), consent=["sms"])  # an sms consent, and no phone
    _, job = made(identify(consent="sms", phone="+33612345678"), consent=["email"])
    assert profiles(job)[0]["attributes"]["subscriptions"] == {
        "sms": {"marketing": {"consent": "SUBSCRIBED"}}
    }


def test_v2_subscribes_without_consent_and_unsubscribes_without_subscriptions() -> None:
    _, job = made(identify(), apiVersion="v2")
    assert profiles(job) == [{"type": "profile", "attributes": {"email": "ada@example.com"}}]
    _, job = made(identify(subscribe=False), apiVersion="v2", consent=["email"])
    assert profiles(job) == [{"type": "profile", "attributes": {"email": "ada@example.com"}}]


def test_a_subscription_needs_an_email_or_phone_or_a_profile_id_to_subscribe() -> None:
    event = group(email=None, phone=None)
    with pytest.raises(Unsendable, match="email or phone is needed to subscribe"):
        made(event, apiVersion="v2")
    event["context"]["externalId"] = [{"type": "klaviyo-profileId", "id": "01HX"}]
    [job] = made(event, apiVersion="v2")
    assert profiles(job) == [{"type": "profile", "id": "01HX", "attributes": {}}]
    event["traits"]["subscribe"] = False
    with pytest.raises(Unsendable, match="email or phone is needed to unsubscribe"):
        made(event, apiVersion="v2")


def test_group_needs_its_subscribe_flag() -> None:
    with pytest.raises(Unsendable, match=r"traits\.subscribe"):
        made(group(subscribe=None))


def test_v1_group_subscribes_in_the_2023_shape_and_cannot_unsubscribe() -> None:
    [job] = made(group(), apiVersion="v1", consent=["email", "sms"])
    assert job.headers["revision"] == "2023-02-22"
    assert job.body == {"data": {"type": "profile-subscription-bulk-create-job", "attributes": {
        "list_id": "L9", "subscriptions": [{"email": "ada@example.com",
        "phone_number": "+33612345678", "channels": {"email": ["MARKETING"],
        "sms": ["MARKETING"]}}]}}}  # fmt: skip
    with pytest.raises(Unsendable, match="only subscribes"):
        made(group(subscribe=False), apiVersion="v1")


def test_v1_ecommerce_events_take_klaviyos_names() -> None:
    event = track(event="Product Added", properties={
        "name": "Tea", "price": 4, "value": "8.5", "quantity": 2, "colour": "green",
        "products": [{"product_id": "p1", "row_total": 8}, {"nothing": 1}]})  # fmt: skip
    [request] = made(event, apiVersion="v1")
    attributes = request.body["data"]["attributes"]
    assert attributes["metric"] == {"name": "Added to Cart"}
    assert attributes["properties"] == {
        "$value": 8.5, "AddedItemProductName": "Tea", "AddedItemPrice": 4,
        "AddedItemQuantity": 2, "items": [{"ProductID": "p1", "RowTotal": 8}], "colour": "green",
    }  # fmt: skip
    assert "unique_id" not in attributes and attributes["time"] == "2026-02-28T09:00:00.123Z"


# Batching


def test_only_subscription_jobs_combine_per_list_operation_and_key() -> None:
    profile, job = made(identify(), consent=["email"])
    [event] = made(track())
    assert KLAVIYO.batch_key(profile) is None and KLAVIYO.batch_key(event) is None
    [same] = made(group(), consent=["email"])
    same.body["data"]["relationships"]["list"]["data"]["id"] = "L1"
    assert KLAVIYO.batch_key(job) == KLAVIYO.batch_key(same)
    [other_list] = made(group(), consent=["email"])
    [unsubscribe] = made(group(subscribe=False), consent=["email"])
    [other_key] = KLAVIYO.map(
        group(), KLAVIYO.parse_settings({"privateApiKey": "pk_other", "apiVersion": "v3",
                                         "consent": ["email"]}), NOW)  # fmt: skip
    [v2] = made(group(), apiVersion="v2")
    keys = {KLAVIYO.batch_key(r) for r in (job, other_list, unsubscribe, other_key, v2)}
    assert len(keys) == 5
    assert KLAVIYO.batch_size == MAX_PROFILES == 100


def test_combine_lists_every_profile_in_job_order() -> None:
    jobs = [made(group(email=f"u{n}@example.com"), consent=["email"])[0] for n in range(3)]
    combined = KLAVIYO.combine(jobs)  # type: ignore[misc]
    assert combined.url == jobs[0].url and combined.headers == jobs[0].headers
    assert [p["attributes"]["email"] for p in profiles(combined)] == [
        "u0@example.com", "u1@example.com", "u2@example.com"]  # fmt: skip
    assert combined.body["data"]["relationships"] == jobs[0].body["data"]["relationships"]
    assert len(profiles(jobs[0])) == 1, "the jobs themselves are left as they were"
    legacy = [made(group(email=f"u{n}@example.com"), apiVersion="v1")[0] for n in range(2)]
    subscriptions = KLAVIYO.combine(legacy).body["data"]["attributes"]["subscriptions"]  # type: ignore[misc]
    assert [s["email"] for s in subscriptions] == ["u0@example.com", "u1@example.com"]


# Answers


def errors(*pointers: str, detail: str = "Invalid email address.") -> bytes:
    found = [{"status": 400, "code": "invalid", "title": "Invalid input.", "detail": detail,
              "source": {"pointer": p}} for p in pointers]  # fmt: skip
    return json.dumps({"errors": found}).encode()


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.DELIVERED), (201, Verdict.DELIVERED), (202, Verdict.DELIVERED),
     (429, Verdict.RETRY), (500, Verdict.RETRY), (503, Verdict.RETRY),
     (404, Verdict.ABORT), (405, Verdict.ABORT)],
)  # fmt: skip
def test_answers_without_errors(status: int, verdict: Verdict) -> None:
    assert KLAVIYO.classify(status, b"", 3) == verdict


def test_a_refusal_carries_klaviyos_words() -> None:
    body = errors("/data/", detail="Missing or invalid private key.")
    assert (
        KLAVIYO.classify(401, body, 2)
        == [Judgement(Verdict.ABORT, "Missing or invalid private key. (/data/)")] * 2
    )
    titled = json.dumps({"errors": [{"title": "Nope."}]}).encode()
    assert KLAVIYO.classify(403, titled, 1) == [Judgement(Verdict.ABORT, "Nope.")]


def test_a_job_refused_for_some_profiles_fails_them_and_sends_the_others_again() -> None:
    pointer = "/data/attributes/profiles/data/{}/attributes/email"
    judged = KLAVIYO.classify(400, errors(pointer.format(1), pointer.format(3)), 4)
    assert isinstance(judged, list)
    assert [j.verdict for j in judged] == [Verdict.RETRY, Verdict.ABORT, Verdict.RETRY,
                                           Verdict.ABORT]  # fmt: skip
    assert judged[1].reason == f"Invalid email address. ({pointer.format(1)})"
    legacy = KLAVIYO.classify(400, errors("/data/attributes/subscriptions/0/email"), 2)
    assert [j.verdict for j in legacy] == [Verdict.ABORT, Verdict.RETRY]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        errors("/data/attributes/profiles/data/1/attributes/email", "/data/relationships/list"),
        errors("/data/attributes/profiles/data/7/attributes/email"),  # not a profile of the job
        errors("/data/attributes/phone_number"),
    ],
)
def test_an_error_about_the_whole_request_refuses_it_all(body: bytes) -> None:
    judged = KLAVIYO.classify(400, body, 2)
    assert isinstance(judged, list) and [j.verdict for j in judged] == [Verdict.ABORT] * 2


def test_a_combined_job_too_large_is_judged_whole_so_the_router_splits_it() -> None:
    body = errors("/data", detail="Request entity too large.")
    assert KLAVIYO.classify(413, body, 3) is Verdict.ABORT
    assert KLAVIYO.classify(413, body, 1) == [
        Judgement(Verdict.ABORT, "Request entity too large. (/data)")]  # fmt: skip


def test_a_pointer_with_a_huge_index_refuses_the_job_whole() -> None:
    huge = "/data/attributes/profiles/data/" + "9" * 5000 + "/attributes/email"
    judged = KLAVIYO.classify(400, errors(huge), 2)
    assert isinstance(judged, list) and [j.verdict for j in judged] == [Verdict.ABORT] * 2


@pytest.mark.parametrize("body", [b"", b"<html>Bad Request</html>", b"[1]", b'{"errors": 3}'])
def test_an_unreadable_refusal_is_still_a_refusal(body: bytes) -> None:
    assert KLAVIYO.classify(400, body, 2) == Verdict.ABORT
