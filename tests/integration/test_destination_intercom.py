"""Intercom end to end: gateway → worker → a double of Intercom's REST API
(tests.vendors.intercom) reached through the destination's `endpoint` setting. The look-ups
(contact searches, company reads and upserts) go to the double as well."""

import time

from tests.delivery import (
    attempts,
    connect_destinations,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.intercom import IntercomDouble

TOKEN = "dG9rOjEyMzQ1Njc4OmFiY2RlZi1pbnRlcmNvbQ=="
STAMP = "2026-01-15T10:00:00.250Z"


def connect(database_url: str, url: str, **config: object) -> None:
    connect_destinations(
        database_url, ("icm", "intercom", {"apiKey": TOKEN, "endpoint": url, **config})
    )


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = IntercomDouble(TOKEN)
    double.throttle_next(2)  # the first identify's search, then its next try
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-1", "timestamp": STAMP,
             "traits": {"email": "Ada@Example.com", "firstName": "Ada", "lastName": "Lovelace",
                        "ownerId": "7", "plan": "pro", "address": {"city": "London"}}},
            {"type": "track", "userId": "user-1", "event": "Order Completed", "messageId": "m-2",
             "timestamp": STAMP, "context": {"traits": {"email": "ada@example.com"}},
             "properties": {"price": {"amount": 1250, "currency": "EUR"}, "cart": {"items": 2}}},
            {"type": "group", "userId": "user-1", "groupId": "acme", "messageId": "m-3",
             "traits": {"name": "Acme", "size": "40", "tier": "gold"},
             "context": {"traits": {"email": "ada@example.com", "tags": ["vip"]}}},
            {"type": "page", "userId": "user-1", "name": "Pricing", "messageId": "m-4"},
            {"type": "identify", "userId": "user-1", "messageId": "m-5", "timestamp": STAMP,
             "traits": {"plan": "team", "company": {"id": "acme", "remove": True}}},
        ])  # fmt: skip
        wait_until(lambda: double.tags and "team" in str(double.contacts) and not double.attached)
        time.sleep(0.3)  # anything sent twice would arrive now
        arrivals = list(sink.arrivals)

    [contact] = double.contacts.values()
    assert contact["external_id"] == "user-1" and contact["email"] == "Ada@Example.com"
    assert (contact["name"], contact["owner_id"]) == ("Ada Lovelace", 7)
    assert contact["custom_attributes"] == {"plan": "team", "address_city": "London"}
    [event] = double.events
    assert event == {"event_name": "Order Completed", "created_at": 1768471200,
                     "user_id": "user-1", "email": "ada@example.com",
                     "metadata": {"price": {"amount": 1250, "currency": "EUR"},
                                  "cart.items": 2}}  # fmt: skip
    [company] = double.companies.values()
    assert company["company_id"] == "acme" and company["size"] == 40
    assert company["custom_attributes"] == {"tier": "gold"}
    assert double.tags == [("vip", company["id"])]
    assert double.attached == set(), "attached by the group, detached by the second identify"
    sent = [(a.method, a.path) for a in arrivals if a.method != "POST" or "search" not in a.path]
    assert sent.count(("PUT", f"/contacts/{contact['id']}")) == 1  # the second identify
    assert ("POST", f"/contacts/{contact['id']}/companies") in sent
    assert ("DELETE", f"/contacts/{contact['id']}/companies/{company['id']}") in sent
    assert all(a.header("authorization") == f"Bearer {TOKEN}" for a in arrivals)
    assert {a.header("intercom-version") for a in arrivals} == {"2.10"}
    states = attempts(workspace_config, 5)
    assert states["delivered"] == 5 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_after_a_429_nothing_is_sent_before_intercoms_reset_time(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """Intercom says when its rate-limit window ends (`X-RateLimit-Reset`, a Unix time), not
    how long to wait: the retry waits for it, beyond the destination's short backoff."""
    double = IntercomDouble(TOKEN, window=2)
    double.throttle_next(1)
    with Sink(double) as sink:
        connect_destinations(
            workspace_config,
            ("icm", "intercom", {"apiKey": TOKEN, "endpoint": sink.url}),
            delivery="{min_backoff_seconds: 0.1, max_backoff_seconds: 5}",
        )
        post(gateway, [{"type": "track", "userId": "user-1", "event": "Signed Up",
                        "messageId": "m-1"}])  # fmt: skip
        wait_until(lambda: len(double.events) == 1)
        first, retry = sink.arrivals

    [reset] = double.resets
    assert first.at < reset <= retry.at + 0.01, (first.at, reset, retry.at)


def test_the_legacy_api_takes_users_events_and_companies(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = IntercomDouble(TOKEN)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, apiVersion="v1", updateLastRequestAt=False)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-1",
             "traits": {"email": "ada@example.com", "createdAt": STAMP,
                        "company": {"name": "Acme", "plan": "pro"}}},
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-2",
             "timestamp": STAMP},
            {"type": "group", "userId": "user-1", "groupId": "g-1", "messageId": "m-3",
             "traits": {"name": "Globex", "monthlySpend": "99"}},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 1 and len(double.companies) == 2
                   and len(double.users.get("user-1", {}).get("companies", [])) == 2)  # fmt: skip
        arrivals = list(sink.arrivals)

    user = double.users["user-1"]
    assert user["email"] == "ada@example.com" and user["signed_up_at"] == 1768471200
    assert user["update_last_request_at"] is False
    globex = double.company("g-1")
    assert globex is not None and globex["monthly_spend"] == 99 and globex["name"] == "Globex"
    assert double.events[0]["created"] == 1768471200
    assert {a.header("intercom-version") for a in arrivals} == {"1.4"}
    assert not any("search" in a.path for a in arrivals), "v1 makes no look-ups"


def test_a_wrong_token_aborts_visibly_with_the_token_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "d3Jvbmc6dG9rZW46NWUwYWJj"
    with Sink(IntercomDouble(TOKEN)) as sink:
        connect(workspace_config, sink.url, apiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track"},
            {"type": "identify", "userId": "user-2", "messageId": "m-identify",
             "traits": {"plan": "pro"}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        assert len(sink.arrivals) == 2  # permanent: neither is tried again
    track, identify = listing["m-track"], listing["m-identify"]
    assert track["status_code"] == 401 and track["attempts"] == 1
    assert track["error"] == "HTTP 401: Access Token Invalid"
    assert track["request"]["headers"]["Authorization"] == "Bearer ****"
    # The identify's contact search was refused: the event fails without being sent.
    assert identify["attempts"] == 1
    assert "HTTP 401 searching the contact: Access Token Invalid" in identify["error"]
    assert identify["request"]["headers"]["Authorization"] == "Bearer ****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_a_contact_the_search_index_missed_is_updated_on_the_next_attempt(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = IntercomDouble(TOKEN, index_lag=1)
    existing = double.seed(external_id="user-1", email="ada@example.com")
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [{"type": "identify", "userId": "user-1", "messageId": "m-1",
                        "traits": {"email": "ada@example.com", "plan": "pro"}}])  # fmt: skip
        wait_until(lambda: double.contacts[existing].get("custom_attributes"))
        time.sleep(0.3)
        writes = [(a.method, a.path) for a in sink.arrivals if "search" not in a.path]

    assert writes == [("POST", "/contacts"), ("PUT", f"/contacts/{existing}")]
    assert len(double.contacts) == 1 and double.searches == 2
    assert double.contacts[existing]["custom_attributes"] == {"plan": "pro"}
    states = attempts(workspace_config, 1)
    assert states == {"retry": 1, "delivered": 1}, states
