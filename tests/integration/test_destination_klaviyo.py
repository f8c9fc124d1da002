"""Klaviyo end to end: gateway → worker → a double of Klaviyo's server API
(tests.vendors.klaviyo) reached through the destination's `endpoint` setting."""

from collections import Counter
from typing import Any

from tests.delivery import (
    attempts,
    connect_destinations,
    failed_jobs,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.klaviyo import KlaviyoDouble

KEY = "pk_sluice_test_7e2b91c04d5a"
NEWS, VIP = "LIST-NEWS", "LIST-VIP"
STAMP = "2026-01-15T10:00:00.250Z"


def connect(database_url: str, url: str, **config: Any) -> None:
    settings = {"privateApiKey": KEY, "apiVersion": "v3", "endpoint": url, "listId": NEWS,
                "consent": ["email", "sms"], **config}  # fmt: skip
    connect_destinations(database_url, ("klaviyo", "klaviyo", settings))


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = KlaviyoDouble(KEY, lists=frozenset({NEWS, VIP}))
    double.throttle_next(2)
    ada = {"email": "ada@example.com", "phone": "+33 6 12 34 56 78"}
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "anonymousId": "anon-1",
             "messageId": "m-identify", "timestamp": STAMP,
             "traits": {**ada, "firstName": "Ada", "city": "Lyon", "plan": "pro",
                        "properties": {"subscribe": True}}},
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "timestamp": STAMP, "context": {"traits": ada},
             "properties": {"revenue": 12.50, "currency": "EUR", "order_id": "o-1"}},
            {"type": "screen", "userId": "user-2", "name": "Home", "messageId": "m-screen",
             "context": {"traits": {"email": "bob@example.com"}}},
            {"type": "group", "userId": "user-2", "groupId": VIP, "messageId": "m-group",
             "traits": {"subscribe": True}, "context": {"traits": {"email": "bob@example.com"}}},
            {"type": "page", "userId": "user-3", "name": "Pricing", "messageId": "m-page"},
            {"type": "alias", "userId": "user-3", "previousId": "anon-9", "messageId": "m-alias"},
        ])  # fmt: skip
        wait_until(lambda: len(double.profiles) == 1 and len(double.events) == 2
                   and len(double.subscriptions) == 2)  # fmt: skip
        states = attempts(workspace_config, 5)
        arrivals = list(sink.arrivals)

    [profile] = double.profiles
    assert profile["type"] == "profile" and profile["meta"] == {"patch_properties": {}}
    assert profile["attributes"] == {
        "external_id": "user-1", "anonymous_id": "anon-1", "email": "ada@example.com",
        "phone_number": "+33 6 12 34 56 78", "first_name": "Ada",
        "location": {"city": "Lyon", "ip": "127.0.0.1"},  # the client's, as the gateway saw it
        "properties": {"plan": "pro"},
    }  # fmt: skip
    events = {e["metric"]["data"]["attributes"]["name"]: e for e in double.events}
    order, home = events["Order Completed"], events["Home"]
    assert order["unique_id"] == "m-order" and order["time"] == STAMP
    assert (order["value"], order["value_currency"]) == (12.5, "EUR")
    assert order["properties"] == {"order_id": "o-1"}
    assert order["profile"]["data"]["attributes"]["external_id"] == "user-1"
    assert home["unique_id"] == "m-screen" and home["properties"] == {}
    assert home["profile"]["data"]["attributes"]["email"] == "bob@example.com"
    subscribed = {(list_id, p["email"]): (on, p["subscriptions"])
                  for list_id, on, p in double.subscriptions}  # fmt: skip
    both = {"email": {"marketing": {"consent": "SUBSCRIBED"}},
            "sms": {"marketing": {"consent": "SUBSCRIBED"}}}  # fmt: skip
    assert subscribed == {
        (NEWS, "ada@example.com"): (True, both),
        (VIP, "bob@example.com"): (True, {"email": both["email"]}),
    }
    assert set(double.revisions) == {"2026-04-15"}
    assert len(arrivals) == 7  # five requests, two of them twice (throttled first)
    assert all(a.header("authorization") == f"Klaviyo-API-Key {KEY}" for a in arrivals)
    assert states["delivered"] == 5 and states["retry"] >= 2, states
    # page and alias are no Klaviyo calls: filtered, neither sent nor failed.
    assert not [a for a in arrivals if b"user-3" in a.body]
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_wrong_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "pk_not_this_accounts_key_3f9"
    with Sink(KlaviyoDouble(KEY)) as sink:
        connect(workspace_config, sink.url, privateApiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track",
             "context": {"traits": {"email": "ada@example.com"}}},
            {"type": "group", "userId": "user-2", "groupId": NEWS, "messageId": "m-group",
             "traits": {"subscribe": False}, "context": {"traits": {"email": "bob@example.com"}}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        assert len(sink.arrivals) == 2  # permanent: not retried
    for failed in listing.values():
        assert failed["status_code"] == 401 and failed["attempts"] == 1
        assert failed["error"] == "HTTP 401: Missing or invalid private key. (/data/)"
        assert failed["request"]["headers"]["Authorization"] == "Klaviyo-API-Key ****"
    assert listing["m-group"]["request"]["url"].endswith("/profile-subscription-bulk-delete-jobs")
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_a_profile_klaviyo_refuses_fails_alone_and_the_rest_of_its_job_goes_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = KlaviyoDouble(KEY, lists=frozenset({VIP}))
    emails = ["ada@example.com", "not-an-email", "cy@example.com"]
    with Sink(double) as sink:
        connect(workspace_config, sink.url, consent=["email"])
        post(gateway, [
            {"type": "group", "userId": f"user-{n}", "groupId": VIP, "messageId": f"m-{n}",
             "traits": {"subscribe": True}, "context": {"traits": {"email": email}}}
            for n, email in enumerate(emails)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.subscriptions) == 2)
        states = attempts(workspace_config, 2)
        sent = Counter(p["attributes"]["email"] for a in sink.arrivals
                       for p in a.json()["data"]["attributes"]["profiles"]["data"])  # fmt: skip

    # One job for the three; the two Klaviyo would take go again (each on its own backoff,
    # so in one job or two).
    assert double.jobs[0] == 3 and sorted(double.jobs[1:]) in ([2], [1, 1]), double.jobs
    assert sent == {"ada@example.com": 2, "not-an-email": 1, "cy@example.com": 2}
    assert sorted(p["email"] for _, _, p in double.subscriptions) == [
        "ada@example.com", "cy@example.com"]  # fmt: skip
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["attempts"] == 1
    assert failed["error"] == (
        "HTTP 400: Invalid email address: 'not-an-email'. "
        "(/data/attributes/profiles/data/1/attributes/email)"
    )
    assert states["delivered"] == 2 and states["aborted"] == 1 and states["retry"] == 2, states
    assert [f["message_id"] for f in failed_jobs(workspace_config)] == ["m-1"]


def test_an_identify_without_api_version_creates_or_finds_the_profile_then_updates_it(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """An imported config without apiVersion is RudderStack's v1: each identify creates the
    profile when it is sent (201: a new id; 409: the existing profile's id) and then updates it
    by that id; a subscription follows the update."""
    double = KlaviyoDouble(KEY, lists=frozenset({NEWS}))
    settings = {"privateApiKey": KEY, "listId": NEWS, "consent": ["email"]}  # no apiVersion
    traits = {"email": "ada@example.com", "firstName": "Ada", "plan": "pro",
              "properties": {"subscribe": True}}  # fmt: skip
    with Sink(double) as sink:
        connect_destinations(
            workspace_config, ("klaviyo", "klaviyo", {**settings, "endpoint": sink.url})
        )
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-1", "traits": traits},
            {"type": "identify", "userId": "user-1", "messageId": "m-2",
             "traits": {**traits, "plan": "team", "properties": {}}},
        ])  # fmt: skip
        wait_until(lambda: len(double.updates) == 2)
        states = attempts(workspace_config, 3)
        arrivals = [(a.method, a.path) for a in sink.arrivals]

    [created] = double.created
    assert created["attributes"]["external_id"] == "user-1"
    first, second = double.updates
    profile_id = first["id"]
    assert second["id"] == profile_id, "the second identify found the profile the first made"
    assert first["attributes"] == {
        "external_id": "user-1",
        "email": "ada@example.com",
        "first_name": "Ada",
        "properties": {"plan": "pro"},
    }
    assert second["attributes"]["properties"] == {"plan": "team"}
    assert arrivals == [
        ("POST", "/api/profiles"),  # created: 201
        ("PATCH", f"/api/profiles/{profile_id}"),
        ("POST", "/api/profile-subscription-bulk-create-jobs"),
        ("POST", "/api/profiles"),  # exists: 409 and its id
        ("PATCH", f"/api/profiles/{profile_id}"),
    ]
    assert [(list_id, p["email"]) for list_id, _, p in double.subscriptions] == [
        (NEWS, "ada@example.com")]  # fmt: skip
    assert set(double.revisions) == {"2023-02-22"}
    assert states["delivered"] == 3, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""
