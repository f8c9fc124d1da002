"""HubSpot's rules the conformance cases leave out: settings, typing traits against the account's
properties, merging inputs for one contact, and reading HubSpot's answers."""

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from engine.destinations.base import BadSettings, Judgement, Looked, Request, Unsendable, Verdict
from engine.destinations.hs import HS, HubSpotSettings, batch_key, combine, resolve
from engine.pipeline.delivery import batching

NOW = datetime(2026, 1, 15, 10, tzinfo=UTC)
TOKEN = "pat-na1-0f1e2d3c"
API = "https://api.hubapi.com"
BATCH = f"{API}/crm/v3/objects/contacts/batch/"
EVENTS = [{"rsEventName": "Signed Up", "hubspotEventName": "pe1_signed_up"}]


def settings(**config: Any) -> HubSpotSettings:
    found: HubSpotSettings = HS.parse_settings(
        {"accessToken": TOKEN, "lookupField": "email", "hubspotEvents": EVENTS, **config}
    )
    return found


def mapped(event: dict[str, Any], **config: Any) -> list[Request]:
    return HS.map(event, settings(**config), NOW)


class Answers:
    """Look-ups answered from a table (path → status, body), each ask recorded."""

    def __init__(self, **answers: tuple[int, Any]) -> None:
        self.answers = {k.replace("_", "/"): v for k, v in answers.items()}
        self.asked: list[Request] = []

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Looked:
        assert not writes  # (HubSpot's look-ups only read, its search included)
        self.asked.append(request)
        path = request.url.removeprefix(API).strip("/")
        status, body = self.answers[path]
        return Looked(status, body)


KINDS = {"plan": "string", "score": "number", "vip": "bool", "birthday": "date",
         "email": "string", "hs_object_id": "number"}  # fmt: skip
TYPES = (200, [{"name": name, "type": kind} for name, kind in KINDS.items()])
UNIQUE = (200, {"results": [{"name": "email", "hasUniqueValue": True},
                            {"name": "phone", "hasUniqueValue": False}]})  # fmt: skip


def answers(search: tuple[int, Any] = (200, {"results": []})) -> Answers:
    return Answers(
        properties_v1_contacts_properties=TYPES,
        crm_v3_properties_contacts=UNIQUE,
        crm_v3_objects_contacts_search=search,
    )


async def completed(event: dict[str, Any], lookups: Answers, **config: Any) -> Request:
    [draft] = mapped(event, **config)
    return await resolve(draft, settings(**config), lookups)


# ---------------------------------------------------------------------------------------------
# Settings


def test_the_credential_the_authorization_type_needs_is_required() -> None:
    with pytest.raises(BadSettings, match="accessToken is required"):
        HS.parse_settings({"authorizationType": "newPrivateAppApi", "apiKey": "k"})
    with pytest.raises(BadSettings, match="apiKey is required"):
        HS.parse_settings({"authorizationType": "legacyApiKey", "accessToken": TOKEN})
    with pytest.raises(BadSettings, match="accessToken is required"):
        HS.parse_settings({"lookupField": "email"})  # (nothing set: a private app is asked for)
    with pytest.raises(BadSettings, match="without spaces"):
        HS.parse_settings({"accessToken": "Bearer abc"})
    with pytest.raises(BadSettings, match="not an http"):
        HS.parse_settings({"accessToken": TOKEN, "endpoint": "ftp://example.com"})
    with pytest.raises(BadSettings):
        HS.parse_settings({"accessToken": TOKEN, "apiVersion": "v2"})


def test_without_an_authorization_type_a_token_means_a_private_app() -> None:
    assert HS.parse_settings({"accessToken": TOKEN}).private_app
    legacy = HS.parse_settings({"apiKey": "k", "hubID": 4242})
    assert not legacy.private_app and legacy.hubID == "4242"
    assert set(HS.help) == set(HubSpotSettings.__struct_fields__)
    assert HS.secret_keys == ("accessToken", "apiKey")


# ---------------------------------------------------------------------------------------------
# Mapping


@pytest.mark.parametrize(
    ("event", "config", "message"),
    [
        ({"type": "identify", "traits": {"email": "nope@"}}, {},
         'email trait "nope@" is no email address'),
        ({"type": "identify", "traits": {"email": "a@b.co"}}, {"lookupField": None},
         "set lookupField"),
        ({"type": "identify", "traits": {"plan": "pro"}}, {"lookupField": "phone"},
         "no 'phone'"),
        ({"type": "identify", "traits": {"plan": "pro"}}, {"apiVersion": "legacyApi"},
         "identifies contacts by email"),
        ({"type": "track", "event": "Other", "properties": {"email": "a@b.co"}}, {},
         "the event 'other' is not in hubspotEvents"),
        ({"type": "track", "event": "Signed Up"}, {}, "an email, utk or objectId"),
        ({"type": "track", "event": " ", "properties": {"email": "a@b.co"}}, {},
         "has no event name"),
        ({"type": "track", "event": "Signed Up", "properties": {"email": "a@b.co"}},
         {"hubspotEvents": []}, "fill in hubspotEvents"),
        ({"type": "track", "event": "Signed Up"}, {"apiVersion": "legacyApi"}, "set hubID"),
    ],
)  # fmt: skip
def test_events_hubspot_would_refuse_are_refused_before_sending(
    event: dict[str, Any], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=message):
        mapped(event, **config)


def test_page_screen_group_and_alias_are_no_hubspot_calls() -> None:
    assert frozenset({"identify", "track"}) == HS.supported_types


def test_a_track_sends_only_the_properties_its_mapping_names() -> None:
    renamed = [{"from": "plan.name", "to": "plan"}, {"from": "empty", "to": "nothing"}]
    config = {"hubspotEvents": [{"rsEventName": "signed up", "hubspotEventName": " pe1_s ",
                                 "eventProperties": renamed}]}  # fmt: skip
    event = {"type": "track", "event": "Signed Up", "originalTimestamp": "2026-01-15T10:00:00Z",
             "context": {"traits": {"utk": "u-1"}, "device": {"name": "Pixel"}},
             "properties": {"plan": {"name": "pro"}, "empty": "", "other": 1}}  # fmt: skip
    [request] = mapped(event, **config)
    assert request.url == f"{API}/events/v3/send" and batch_key(request) is None
    assert request.body == {"utk": "u-1", "occurredAt": "2026-01-15T10:00:00Z",
                            "eventName": "pe1_s",
                            "properties": {"plan": "pro", "hs_device_name": "Pixel"}}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Completing identifies


async def test_traits_are_typed_against_the_accounts_properties() -> None:
    event = {"type": "identify", "traits": {
        "email": "ada@example.com", "Plan": {"tier": "pro"}, "score": 42, "vip": True,
        "birthday": "1990-05-17T15:30:00+02:00", "unknown": "x", "hs_object_id": 9}}  # fmt: skip
    request = await completed(event, answers())
    assert request.url == BATCH + "upsert"
    assert request.body["properties"] == {"email": "ada@example.com", "plan": '{"tier":"pro"}',
                                          "score": 42, "vip": True,
                                          "birthday": 642902400000}  # fmt: skip
    numbers = {"type": "identify", "traits": {"email": "a@b.co", "plan": 7, "score": None}}
    assert (await completed(numbers, answers())).body["properties"] == {
        "email": "a@b.co", "plan": "7", "score": ""  # a null clears the property
    }  # fmt: skip


@pytest.mark.parametrize(
    ("traits", "message"),
    [({"score": "42"}, "'score' is of type string, but HubSpot's property is of type number"),
     ({"birthday": 10**20}, "'birthday' is a date out of range"),
     ({"birthday": "9999-12-31T23:59:59-10:00"}, "'birthday' is a date out of range"),
     ({"vip": {"a": 1}}, "'vip' is of type object, but HubSpot's property is of type bool")],
)  # fmt: skip
async def test_a_trait_of_the_wrong_type_refuses_the_event(
    traits: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=message):
        await completed({"type": "identify", "traits": {"email": "a@b.co", **traits}}, answers())


async def test_the_property_types_are_asked_only_for_traits_beyond_the_standard_ones() -> None:
    lookups = answers()
    await completed({"type": "identify", "traits": {"email": "a@b.co", "firstname": "A"}}, lookups)
    assert [r.url for r in lookups.asked] == [f"{API}/crm/v3/properties/contacts"]


async def test_a_contact_named_by_its_hubspot_id_is_updated_without_a_search() -> None:
    event = {"type": "identify", "traits": {"firstname": "A"},
             "context": {"externalId": [{"type": "hsContactId", "id": 123}]}}  # fmt: skip
    lookups = answers()
    request = await completed(event, lookups, lookupField="phone")
    assert request.url == BATCH + "update"
    assert request.body == {"id": "123", "properties": {"firstname": "A"}}
    assert lookups.asked == []


async def test_a_search_decides_between_create_and_update_and_refuses_two_contacts() -> None:
    event = {"type": "identify", "traits": {"phone": "555", "email": "a@b.co"}}
    created = await completed(event, answers(), lookupField="phone")
    assert created.url == BATCH + "create" and created.body == {"properties": event["traits"]}
    one = answers((200, {"results": [{"id": "7"}]}))
    updated = await completed(event, one, lookupField="phone")
    assert (updated.url, updated.body["id"]) == (BATCH + "update", "7")
    [search] = [r for r in one.asked if r.url.endswith("/search")]
    assert search.body["filterGroups"] == [
        {"filters": [{"propertyName": "phone", "operator": "EQ", "value": "555"}]}
    ]
    two = answers((200, {"results": [{"id": "7"}, {"id": "8"}]}))
    with pytest.raises(Unsendable, match="more than one HubSpot contact has phone '555'"):
        await completed(event, two, lookupField="phone")


async def test_a_refused_look_up_refuses_the_event_with_hubspots_words() -> None:
    refused = (401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                     "message": "Authentication credentials not found."})  # fmt: skip
    lookups = Answers(properties_v1_contacts_properties=refused, crm_v3_properties_contacts=refused)
    with pytest.raises(Unsendable) as raised:
        await completed({"type": "identify", "traits": {"email": "a@b.co"}}, lookups)
    assert str(raised.value) == (
        "HubSpot answered HTTP 401 reading the contact properties: INVALID_AUTHENTICATION: "
        "Authentication credentials not found."
    )


async def test_a_legacy_event_keeps_its_own_parameters_whatever_the_traits() -> None:
    """Traits become query parameters of the legacy event: a property of the account named
    like one of the event's own (`_n`, the event name) does not replace it."""
    lookups = Answers(properties_v1_contacts_properties=(
        200, [{"name": n, "type": "string"} for n in ("_n", "_a", "id", "plan")]))  # fmt: skip
    event = {"type": "track", "event": "Signed Up", "properties": {"email": "a@b.co"},
             "traits": {"_n": "Deleted", "_a": "666", "id": "x", "plan": "pro"}}  # fmt: skip
    request = await completed(event, lookups, apiVersion="legacyApi", hubID="42")
    assert request.params == {"_a": "42", "_n": "Signed Up", "email": "a@b.co", "plan": "pro"}


async def test_legacy_look_ups_and_writes_carry_the_hapikey() -> None:
    event = {"type": "identify", "traits": {"email": "a@b.co", "plan": "pro"}}
    lookups = answers()
    config = {"authorizationType": "legacyApiKey", "apiKey": "k-1", "apiVersion": "legacyApi"}
    request = await completed(event, lookups, **config)
    assert all(r.params == {"hapikey": "k-1"} and "Authorization" not in r.headers
               for r in [*lookups.asked, request])  # fmt: skip
    assert request.body == {"email": "a@b.co", "properties": [{"property": "plan", "value": "pro"}]}


# ---------------------------------------------------------------------------------------------
# Batching


def write(operation: str, body: dict[str, Any], **params: str) -> Request:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    return Request("POST", BATCH + operation, headers, params, body)


def upsert(email: str, trace: str, **properties: Any) -> Request:
    return write("upsert", {"id": email, "idProperty": "email", "objectWriteTraceId": trace,
                            "properties": {"email": email, **properties}})  # fmt: skip


def test_inputs_for_one_contact_merge_and_keep_unique_trace_ids() -> None:
    sent = [upsert("a@b.co", "m-1", plan="pro", score=1), upsert("c@d.co", "m-1"),
            upsert("A@b.co", "m-3", plan="team")]  # fmt: skip
    inputs = combine(sent).body["inputs"]
    assert inputs == [
        {"id": "a@b.co", "idProperty": "email", "objectWriteTraceId": "m-1",
         "properties": {"email": "A@b.co", "plan": "team", "score": 1}},
        {"id": "c@d.co", "idProperty": "email", "objectWriteTraceId": "m-1~2",
         "properties": {"email": "c@d.co"}},
    ]  # fmt: skip
    updates = [write("update", {"id": "7", "properties": {"a": 1}}),
               write("update", {"id": "7", "properties": {"b": 2}})]  # fmt: skip
    assert combine(updates).body == {"inputs": [{"id": "7", "properties": {"a": 1, "b": 2}}]}


async def test_creates_for_one_lookup_value_merge_and_nothing_internal_travels() -> None:
    """What a create is looked up by travels in the stored request's hints, never in its URL,
    query or body: HubSpot sees only the contact."""
    events = [{"type": "identify", "traits": {"phone": "5", "plan": "pro"}},
              {"type": "identify", "traits": {"phone": "5", "lastName": "B"}},
              {"type": "identify", "traits": {"phone": "6"}}]  # fmt: skip
    sent = [await completed(e, answers(), lookupField="phone") for e in events]
    assert len({batch_key(r) for r in sent}) == 1
    assert all(r.params == {} and "phone" not in r.url for r in sent)
    combined = combine(sent)
    assert (combined.params, combined.hints) == ({}, {})
    assert combined.body == {"inputs": [{"properties": {"phone": "5", "plan": "pro",
                                                        "lastname": "B"}},
                                        {"properties": {"phone": "6"}}]}  # fmt: skip


async def test_a_test_event_is_sent_as_a_batch_of_one_hubspot_takes() -> None:
    """The test event (engine.control.preview.send) goes in the shape the router sends."""
    identify = {"type": "identify", "messageId": "m-1", "traits": {"email": "a@b.co"}}
    upsert_ = batching.outgoing(HS, [await completed(identify, answers())])
    assert upsert_.body == {"inputs": [{"id": "a@b.co", "idProperty": "email",
                                        "objectWriteTraceId": "m-1",
                                        "properties": {"email": "a@b.co"}}]}  # fmt: skip
    config = {"apiVersion": "legacyApi", "hubID": "42"}
    legacy = batching.outgoing(HS, [await completed(identify, answers(), **config)])
    assert legacy.body == [{"email": "a@b.co", "properties": []}]
    track = {"type": "track", "event": "Signed Up", "properties": {"email": "a@b.co", "x": 1}}
    pixel = batching.outgoing(HS, [await completed(track, answers(), **config)])
    assert (pixel.method, pixel.body, pixel.params["_n"]) == ("GET", None, "Signed Up")
    [event] = mapped(track)
    assert batching.outgoing(HS, [event]) == event
    for request in (upsert_, legacy, pixel, event):
        assert request.hints == {} and not any(k.startswith("sluice") for k in request.params)


def test_drafts_combine_and_credentials_and_endpoints_keep_batches_apart() -> None:
    one = mapped({"type": "identify", "traits": {"email": "a@b.co"}})[0]
    other_token = mapped({"type": "identify", "traits": {"email": "a@b.co"}}, accessToken="t2")[0]
    assert batch_key(one) is not None and batch_key(one) != batch_key(other_token)
    assert batch_key(one) != batch_key(upsert("a@b.co", "m"))
    assert batch_key(upsert("a@b.co", "m")) != batch_key(write("create", {"properties": {}}))


# ---------------------------------------------------------------------------------------------
# Answers


def judged(status: int, answer: Any, sent: list[Request]) -> Verdict | list[Judgement]:
    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    found = HS.judge(status, body, sent)
    return found if isinstance(found, Verdict) else list(found)


def test_a_207_fails_only_the_jobs_its_errors_name() -> None:
    sent = [upsert("a@b.co", "m-1"), upsert("bad@b.co", "m-2"), upsert("bad@b.co", "m-3"),
            upsert("c@d.co", "m-4")]  # fmt: skip
    answer = {"status": "COMPLETE", "results": [{"id": "1"}, {"id": "2"}], "numErrors": 1,
              "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                          "message": "Email address bad@b.co is invalid",
                          "context": {"objectWriteTraceId": ["m-2"]}}]}  # fmt: skip
    refused = Judgement(Verdict.ABORT, "VALIDATION_ERROR: Email address bad@b.co is invalid")
    ok = Judgement(Verdict.DELIVERED)
    assert judged(207, answer, sent) == [ok, refused, refused, ok]
    updates = [write("update", {"id": "7", "properties": {}}),
               write("update", {"id": "8", "properties": {}})]  # fmt: skip
    gone = {"results": [{"id": "7"}], "errors": [
        {"category": "OBJECT_NOT_FOUND", "message": "Object not found.", "context": {"ids": ["8"]}}
    ]}  # fmt: skip
    assert judged(207, gone, updates) == [
        ok,
        Judgement(Verdict.ABORT, "OBJECT_NOT_FOUND: Object not found."),
    ]
    unnamed = {"results": [{"id": "1"}], "errors": [{"message": "?", "context": {"o": ["x"]}}]}
    assert judged(207, unnamed, sent) is Verdict.DELIVERED  # (RudderStack's reading)


def test_a_batch_answer_that_took_nothing_refuses_the_batch() -> None:
    sent = [upsert("a@b.co", "m-1"), upsert("c@d.co", "m-2")]
    silent = judged(200, {"status": "COMPLETE", "results": [], "errors": []}, sent)
    assert silent == [Judgement(Verdict.ABORT, "HubSpot answered without results or errors: "
                                               "it took none of the batch")] * 2  # fmt: skip
    assert judged(201, {"status": "COMPLETE", "results": [{"id": "1"}]}, sent) is Verdict.DELIVERED
    legacy = Request("POST", f"{API}/contacts/v1/contact/batch/", {}, {}, {"email": "a@b.co"})
    assert judged(202, b"", [legacy]) is Verdict.DELIVERED  # the legacy batch answers empty
    event = mapped({"type": "track", "event": "Signed Up", "properties": {"email": "a@b.co"}})
    assert judged(204, b"", event) is Verdict.DELIVERED


def test_refusals_throttling_and_conflicts() -> None:
    sent = [upsert("a@b.co", "m-1"), upsert("c@d.co", "m-2")]
    throttled = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                 "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}  # fmt: skip
    assert judged(429, throttled, sent) is Verdict.RETRY
    assert judged(502, b"<html>bad gateway</html>", sent) is Verdict.RETRY
    invalid = {"status": "error", "message": "Property values were not valid",
               "category": "VALIDATION_ERROR"}  # fmt: skip
    reason = "VALIDATION_ERROR: Property values were not valid"
    assert judged(400, invalid, sent[:1]) == [Judgement(Verdict.ABORT, reason)]
    assert judged(401, b"", sent) is Verdict.ABORT
    unauthorised = {"category": "INVALID_AUTHENTICATION", "message": "no"}
    assert (
        judged(401, unauthorised, sent)
        == [Judgement(Verdict.ABORT, "INVALID_AUTHENTICATION: no")] * 2
    )  # (refused for every job alike: not sent again one by one)
    conflict = {"status": "error", "message": "Contact already exists. Existing ID: 5",
                "category": "CONFLICT"}  # fmt: skip
    create = [write("create", {"properties": {"email": "a@b.co"}})]
    assert judged(409, conflict, create) == [
        Judgement(Verdict.RETRY, "CONFLICT: Contact already exists. Existing ID: 5")
    ]  # the next search finds it
    assert judged(409, conflict, sent[:1])[0].verdict is Verdict.ABORT  # type: ignore[index]


def test_a_batch_refused_whole_for_one_input_is_sent_again_job_by_job() -> None:
    """HubSpot refuses a whole batch for one bad input (400) or one contact that exists (409, a
    create) without naming it: the router sends each job again alone (`split_on` and a verdict
    of ABORT for the batch), where HubSpot's answer is the job's own."""
    invalid = {"status": "error", "message": "Property values were not valid",
               "category": "VALIDATION_ERROR"}  # fmt: skip
    conflict = {"status": "error", "message": "Contact already exists. Existing ID: 5",
                "category": "CONFLICT"}  # fmt: skip
    upserts = [upsert("a@b.co", "m-1"), upsert("c@d.co", "m-2")]
    creates = [write("create", {"properties": {"email": e}}) for e in ("a@b.co", "c@d.co")]
    assert {400, 409} <= HS.split_on
    assert judged(400, invalid, upserts) is Verdict.ABORT
    assert judged(409, conflict, creates) is Verdict.ABORT  # (not retried whole forever)
    assert judged(400, invalid, creates[:1]) == [
        Judgement(Verdict.ABORT, "VALIDATION_ERROR: Property values were not valid")
    ]


def test_errors_naming_no_input_without_results_refuse_the_batch() -> None:
    """A 2xx with errors HubSpot attached to no input, and no results: nothing was taken."""
    creates = [write("create", {"properties": {"email": e}}) for e in ("a@b.co", "c@d.co")]
    answer = {"results": [], "errors": [{"category": "VALIDATION_ERROR", "message": "bad",
                                         "context": {}}]}  # fmt: skip
    refused = Judgement(Verdict.ABORT, "VALIDATION_ERROR: bad")
    assert judged(207, answer, creates) == [refused] * 2
    assert judged(200, answer, creates[:1]) == [refused]


def test_a_draft_shows_what_resolve_needs_and_no_secret_outside_its_auth() -> None:
    event = {"type": "identify", "messageId": "m-9", "traits": {"email": "a@b.co", "plan": "pro"}}
    [draft] = mapped(event)
    assert draft.url == f"{API}/crm/v3/objects/contacts"
    assert draft.body == {"properties": {"email": "a@b.co"}, "traits": {"plan": "pro"}}
    assert draft.hints == {"field": "email", "value": "a@b.co", "trace": "m-9"}
    assert draft.params == {}
    assert TOKEN not in msgspec.json.encode(msgspec.structs.replace(draft, headers={})).decode()
