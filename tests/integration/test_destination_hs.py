"""HubSpot end to end: gateway → worker → a double of HubSpot's APIs (tests.vendors.hubspot)
reached through the destination's `endpoint` setting. The look-ups (property definitions,
contact searches) go to the double as well."""

from typing import Any

from tests.delivery import (
    FAST_RETRIES,
    attempts,
    connect_destinations,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.hubspot import HubSpotDouble

TOKEN = "pat-eu1-5b1c2d3e-0f4a-4b5c-9d6e-7f8091a2b3c4"
API_KEY = "3c9e1f2a-hapikey-77d0"
STAMP = "2026-01-15T10:00:00.250Z"
EVENTS = [{"rsEventName": "Order Completed", "hubspotEventName": "pe4242_order_completed",
           "eventProperties": [{"from": "revenue", "to": "value"},
                               {"from": "cart.items", "to": "items"}]}]  # fmt: skip


def connect(database_url: str, url: str, delivery: str = FAST_RETRIES, **config: Any) -> None:
    settings = {"authorizationType": "newPrivateAppApi", "accessToken": TOKEN,
                "apiVersion": "newApi", "lookupField": "email", "hubspotEvents": EVENTS,
                "endpoint": url, **config}  # fmt: skip
    connect_destinations(database_url, ("hubspot", "hs", settings), delivery=delivery)


def identify(user: str, message: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": message, "timestamp": STAMP,
            "traits": traits}  # fmt: skip


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = HubSpotDouble(token=TOKEN, event_names=frozenset({"pe4242_order_completed"}))
    double.contacts["900"] = {"email": "bob@example.com", "plan": "free"}
    double.throttle_next(2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            identify("user-1", "m-1", email="ada@example.com", firstName="Ada", plan="pro",
                     score=42, birthday="1990-05-17T15:30:00Z", **{"Favourite Colour": "teal"},
                     hs_object_id=7),
            {"type": "track", "userId": "user-1", "event": "order completed", "messageId": "m-2",
             "timestamp": STAMP, "context": {"traits": {"email": "ada@example.com"}},
             "properties": {"revenue": 30, "price": 12, "cart": {"items": 2}}},
            {**identify("user-2", "m-3", plan="team", score=None),
             "context": {"externalId": [{"type": "hsContactId", "id": "900"}]}},
            {"type": "page", "userId": "user-1", "name": "Pricing", "messageId": "m-4"},
        ])  # fmt: skip
        wait_until(lambda: double.events and len(double.contacts) == 2
                   and double.contacts["900"]["plan"] == "team")  # fmt: skip
        states = attempts(workspace_config, 3)
        arrivals = list(sink.arrivals)

    [ada] = [c for i, c in double.contacts.items() if i != "900"]
    # Traits that are no property of the account are left out, hs_object_id too; a date goes
    # as its UTC midnight in milliseconds.
    assert ada == {"email": "ada@example.com", "firstname": "Ada", "plan": "pro", "score": 42,
                   "birthday": 642902400000}  # fmt: skip
    assert double.contacts["900"] == {"email": "bob@example.com", "plan": "team", "score": ""}
    assert double.events == [{"email": "ada@example.com", "occurredAt": STAMP,
                              "eventName": "pe4242_order_completed",
                              "properties": {"value": 30, "items": 2}}]  # fmt: skip
    writes = [a.path for a in arrivals if a.path.startswith("/crm/v3/objects/contacts/batch/")]
    assert sorted(set(writes)) == [
        "/crm/v3/objects/contacts/batch/update",  # an hsContactId: no look-up needed
        "/crm/v3/objects/contacts/batch/upsert",  # email is a unique-value property
    ]
    assert all(a.header("Authorization") == f"Bearer {TOKEN}" for a in arrivals)
    assert not [a for a in arrivals if b"Pricing" in a.body]  # page is no HubSpot call
    assert states["delivered"] == 3 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_look_up_that_fails_is_asked_again_and_a_lagging_search_is_caught_up(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """lookupField phone is no unique property: contacts are searched, then created or updated.
    A look-up answered 503 retries the event; a create refused 409 (the contact existed, the
    search index had not caught up) is retried, and the next search finds the contact."""
    double = HubSpotDouble(token=TOKEN, lagging={"+44 20 7946 0018"})
    double.contacts["700"] = {"email": "cy@example.com", "phone": "+44 20 7946 0018"}
    double.fail_lookups(1)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, lookupField="phone")
        post(gateway, [identify("user-1", "m-1", phone="+44 20 7946 0000", firstName="Ada")])
        wait_until(lambda: len(double.contacts) == 2)
        post(gateway, [
            identify("user-1", "m-2", phone="+44 20 7946 0000", plan="pro"),
            identify("user-3", "m-3", phone="+44 20 7946 0018", email="cy@example.com",
                     plan="team"),
        ])  # fmt: skip
        wait_until(lambda: len(double.batches) == 3 and "plan" in double.contacts["700"])
        states = attempts(workspace_config, 3)
        arrivals = [a.path for a in sink.arrivals]

    [ada] = [c for i, c in double.contacts.items() if i != "700"]
    assert ada == {"phone": "+44 20 7946 0000", "firstname": "Ada", "plan": "pro"}
    assert double.contacts["700"]["plan"] == "team"
    assert sorted(double.batches) == [("create", 1), ("update", 1), ("update", 1)]
    assert arrivals.count("/crm/v3/objects/contacts/batch/create") == 2  # the 409, then Ada's
    assert states["delivered"] == 3 and states["retry"] == 2 and states["aborted"] == 0, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_what_hubspot_refuses_in_a_batch_fails_alone_and_is_not_sent_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """A 207: the upserts its errors name (by objectWriteTraceId) fail with HubSpot's message,
    the others were taken. A user's two identifies of one contact travel as one input, and
    share its outcome."""
    double = HubSpotDouble(token=TOKEN, refused_emails=frozenset({"bad@example.com"}))
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            identify("user-1", "m-1", email="ada@example.com", plan="pro"),
            identify("user-2", "m-2a", email="bad@example.com", plan="pro"),
            identify("user-2", "m-2b", email="bad@example.com", plan="team"),
            identify("user-3", "m-3a", email="cy@example.com", firstName="Cy"),
            identify("user-3", "m-3b", email="cy@example.com", plan="team"),
        ])  # fmt: skip
        failed = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        states = attempts(workspace_config, 3)
        upserts = [a for a in sink.arrivals if a.path.endswith("/batch/upsert")]

    assert [len(a.json()["inputs"]) for a in upserts] == [3]  # one request, sent once
    assert sorted(c["email"] for c in double.contacts.values()) == [
        "ada@example.com", "cy@example.com"
    ]  # fmt: skip
    [cy] = [c for c in double.contacts.values() if c["email"] == "cy@example.com"]
    assert (cy["firstname"], cy["plan"]) == ("Cy", "team")
    assert set(failed) == {"m-2a", "m-2b"}
    for refused in failed.values():
        assert refused["status_code"] == 207 and refused["attempts"] == 1
        assert refused["error"] == (
            "HTTP 207: VALIDATION_ERROR: Property values were not valid: Email address "
            "bad@example.com is invalid"
        )
    assert states["delivered"] == 3 and states["aborted"] == 2 and states["retry"] == 0, states


def test_a_batch_hubspot_refuses_whole_is_sent_again_job_by_job(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """HubSpot answers 400 to a batch create with one invalid input, naming none: each job is
    sent again alone (as RudderStack does), so only the invalid one fails, with HubSpot's
    message, and the others' contacts are created."""
    double = HubSpotDouble(token=TOKEN, refused_emails=frozenset({"bad@example.com"}))
    with Sink(double) as sink:
        connect(workspace_config, sink.url, lookupField="phone")
        post(gateway, [
            identify(f"user-{n}", f"m-{n}", phone=f"+1 555 010{n}", email=email)
            for n, email in enumerate(["ada@example.com", "bad@example.com", "cy@example.com"])
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.contacts) == 2)
        states = attempts(workspace_config, 2)
        creates = [a for a in sink.arrivals if a.path.endswith("/batch/create")]

    assert [len(a.json()["inputs"]) for a in creates] == [3, 1, 1, 1]
    assert sorted(c["email"] for c in double.contacts.values()) == [
        "ada@example.com", "cy@example.com"
    ]  # fmt: skip
    assert failed["message_id"] == "m-1" and failed["attempts"] == 2
    assert failed["error"] == (
        "HTTP 400: VALIDATION_ERROR: Property values were not valid: Email address "
        "bad@example.com is invalid"
    )
    assert states == {"retry": 3, "delivered": 2, "aborted": 1}, states


def test_a_contact_that_exists_fails_alone_and_the_others_of_its_batch_are_created(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """lookupField phone: a create for an email HubSpot has already (under another phone) is
    answered 409 whole. Each job goes again alone: the new contact is created, and the one
    that conflicts is retried (HubSpot's search may trail) until its retries run out."""
    double = HubSpotDouble(token=TOKEN)
    double.contacts["700"] = {"email": "cy@example.com", "phone": "+44 20 7946 0018"}
    brief = "{min_backoff_seconds: 0.1, max_backoff_seconds: 0.2, retry_hours: 0.001}"
    with Sink(double) as sink:
        connect(workspace_config, sink.url, delivery=brief, lookupField="phone")
        post(gateway, [
            identify("user-1", "m-1", phone="+44 20 7946 0000", email="cy@example.com"),
            identify("user-2", "m-2", phone="+44 20 7946 0001", email="dee@example.com"),
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        creates = [a for a in sink.arrivals if a.path.endswith("/batch/create")]

    assert len(creates[0].json()["inputs"]) == 2
    assert {c["email"] for c in double.contacts.values()} == {"cy@example.com", "dee@example.com"}
    assert double.contacts["700"] == {"email": "cy@example.com", "phone": "+44 20 7946 0018"}
    assert all(len(a.json()["inputs"]) == 1 for a in creates[1:])  # alone since the 409
    assert failed["message_id"] == "m-1" and failed["status_code"] == 409, failed
    assert failed["error"].startswith(
        "HTTP 409: CONFLICT: Contact already exists. Existing ID: 700; gave up after"
    )


def test_a_wrong_api_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "5d0c7e21-not-this-accounts-key"
    double = HubSpotDouble(api_key=API_KEY, event_names=frozenset({"pe4242_order_completed"}))
    with Sink(double) as sink:
        connect(workspace_config, sink.url, authorizationType="legacyApiKey", accessToken=None,
                apiKey=wrong, hubID="4242")  # fmt: skip
        post(gateway, [
            identify("user-1", "m-1", email="ada@example.com"),
            {"type": "track", "userId": "user-1", "event": "Order Completed", "messageId": "m-2",
             "properties": {"email": "ada@example.com"}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        arrivals = list(sink.arrivals)

    assert all(a.query["hapikey"] == wrong for a in arrivals)  # the key travels in the URL
    assert not [a for a in arrivals if "batch" in a.path]  # the identify's look-up failed
    identified, tracked = listing["m-1"], listing["m-2"]
    assert identified["error"] == (
        "HubSpot answered HTTP 401 reading the contact properties: INVALID_AUTHENTICATION: "
        "Authentication credentials not found."
    )
    assert (
        tracked["error"]
        == "HTTP 401: INVALID_AUTHENTICATION: Authentication credentials not found."
    )
    assert tracked["status_code"] == 401 and tracked["attempts"] == 1
    for failed in listing.values():
        assert failed["request"]["params"]["hapikey"] == "****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_the_legacy_api_takes_contacts_in_batches_and_events_as_pixels(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = HubSpotDouble(token=TOKEN, hub_id="4242")
    with Sink(double) as sink:
        connect(workspace_config, sink.url, apiVersion="legacyApi", hubID="4242")
        post(gateway, [
            identify("user-1", "m-1", email="ada@example.com", firstName="Ada", plan="pro"),
            identify("user-2", "m-2", email="bob@example.com", score=3),
            {"type": "track", "userId": "user-1", "event": "Order Completed", "messageId": "m-3",
             "properties": {"email": "ada@example.com", "revenue": 30, "plan": "pro",
                            "coupon": "x"}},
        ])  # fmt: skip
        wait_until(lambda: len(double.legacy_contacts) == 2 and double.pixels)
        states = attempts(workspace_config, 3)
        arrivals = list(sink.arrivals)

    contacts = {c["email"]: c["properties"] for c in double.legacy_contacts}
    assert contacts == {
        "ada@example.com": [{"property": "firstname", "value": "Ada"},
                            {"property": "plan", "value": "pro"}],
        "bob@example.com": [{"property": "score", "value": 3}],
    }  # fmt: skip
    assert double.pixels == [{"_a": "4242", "_n": "Order Completed", "_m": "30",
                              "email": "ada@example.com", "plan": "pro"}]  # fmt: skip
    pixel = next(a for a in arrivals if a.path == "/v1/event")
    assert pixel.header("Authorization") == f"Bearer {TOKEN}" and "hapikey" not in pixel.query
    assert states["delivered"] == 3, states
