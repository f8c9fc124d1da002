"""Iterable end to end: gateway → worker → a double of Iterable's REST API
(tests.vendors.iterable) reached through the destination's `endpoint` setting."""

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
from tests.vendors.iterable import IterableDouble

KEY = "itbl-server-key-5c81f0a2d9"
DEVICE_KEY = "itbl-mobile-key-0b7e44c1"
STAMP = "2026-01-15T10:00:00.250Z"
STAMP_MS = 1768471200250


def connect(database_url: str, url: str, **config: Any) -> None:
    settings = {"apiKey": KEY, "registerDeviceOrBrowserApiKey": DEVICE_KEY, "endpoint": url,
                "trackAllPages": True, **config}  # fmt: skip
    connect_destinations(database_url, ("iterable", "iterable", settings))


EVERY_CALL: list[dict[str, Any]] = [
    {"type": "identify", "userId": "user-1", "messageId": "m-identify-1", "timestamp": STAMP,
     "traits": {"email": "ada@example.com", "plan": "pro"},
     "context": {"device": {"token": "apns-token-1", "type": "ios", "name": "Sluice App"}}},
    {"type": "identify", "anonymousId": "anon-2", "messageId": "m-identify-2",
     "traits": {"email": "bob@example.com"}, "context": {"os": {"token": "web-push-2"}}},
    {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track",
     "timestamp": STAMP, "properties": {"plan": "pro", "campaignId": "42", "event_id": "ev-1"}},
    {"type": "track", "userId": "user-3", "event": "Order Completed", "messageId": "m-order",
     "timestamp": STAMP, "context": {"traits": {"email": "cy@example.com"}},
     "properties": {"order_id": "o-1", "total": 25.5, "products": [
         {"product_id": "p-1", "name": "Mug", "price": "12.75", "quantity": 2,
          "category": "kitchen,cups"}]}},
    {"type": "track", "userId": "user-3", "event": "Product Added", "messageId": "m-cart",
     "properties": {"product_id": "p-2", "name": "Pen", "price": 2, "quantity": 1}},
    {"type": "page", "userId": "user-4", "name": "Pricing", "messageId": "m-page",
     "timestamp": STAMP, "properties": {"url": "https://example.com/pricing"}},
    {"type": "screen", "userId": "user-4", "name": "Home", "messageId": "m-screen"},
    {"type": "alias", "userId": "new@example.com", "previousId": "old@example.com",
     "messageId": "m-alias"},
    {"type": "group", "userId": "user-5", "groupId": "g-1", "messageId": "m-group"},
]  # fmt: skip


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = IterableDouble(KEY, device_key=DEVICE_KEY)
    double.throttle_next(2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, EVERY_CALL)
        wait_until(lambda: len(double.updates) == 2 and len(double.events) == 3
                   and double.purchases and double.carts and double.email_changes
                   and double.devices and double.browsers)  # fmt: skip
        states = attempts(workspace_config, 10)
        arrivals = list(sink.arrivals)

    updates = {u.get("userId"): u for u in double.updates}
    assert updates["user-1"] == {"email": "ada@example.com", "userId": "user-1",
                                 "dataFields": {"email": "ada@example.com", "plan": "pro"},
                                 "preferUserId": True, "mergeNestedObjects": True}  # fmt: skip
    assert updates["anon-2"]["email"] == "bob@example.com"
    events = {e["eventName"]: e for e in double.events}
    assert events["Signed Up"] == {"userId": "user-1", "eventName": "Signed Up",
                                   "createdAt": STAMP_MS, "campaignId": 42, "id": "ev-1",
                                   "dataFields": {"plan": "pro", "campaignId": "42",
                                                  "event_id": "ev-1"}}  # fmt: skip
    assert events["Pricing page"]["dataFields"] == {"url": "https://example.com/pricing"}
    assert events["Home screen"]["userId"] == "user-4"
    assert (events["Pricing page"]["id"], events["Home screen"]["id"]) == ("m-page", "m-screen")
    [purchase] = double.purchases
    assert (purchase["id"], purchase["total"], purchase["createdAt"]) == ("o-1", 25.5, STAMP_MS)
    assert purchase["user"]["email"] == "cy@example.com"
    assert purchase["items"] == [{"id": "p-1", "name": "Mug", "price": 12.75, "quantity": 2,
                                  "categories": ["kitchen", "cups"]}]  # fmt: skip
    assert double.carts[0]["items"] == [{"id": "p-2", "name": "Pen", "price": 2, "quantity": 1}]
    assert double.email_changes == [{"currentEmail": "old@example.com",
                                     "newEmail": "new@example.com"}]  # fmt: skip
    [device], [browser] = double.devices, double.browsers
    assert device["key"] == DEVICE_KEY and device["userId"] == "user-1"
    assert device["device"] == {"token": "apns-token-1", "platform": "APNS",
                                "applicationName": "Sluice App"}  # fmt: skip
    assert browser == {"browserToken": "web-push-2", "email": "bob@example.com",
                       "userId": "anon-2", "key": DEVICE_KEY}  # fmt: skip

    paths = {a.path for a in arrivals}
    # Users and events travel through the bulk endpoints only; the group call is not taken.
    assert "/api/users/update" not in paths and "/api/events/track" not in paths
    assert {"/api/users/bulkUpdate", "/api/events/trackBulk"} <= paths
    assert not [a for a in arrivals if b"user-5" in a.body]
    tokens = {"/api/users/registerDeviceToken", "/api/users/registerBrowserToken"}
    assert all(a.header("api_key") == (DEVICE_KEY if a.path in tokens else KEY) for a in arrivals)
    # A user's token is registered once their update was taken (per-user order).
    taken = [a.at for a in sink.delivered if a.path.endswith("bulkUpdate") and b"user-1" in a.body]
    registered = [a.at for a in arrivals if a.path == "/api/users/registerDeviceToken"]
    assert taken and registered and min(registered) >= min(taken)
    assert states["delivered"] == 10 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_wrong_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "itbl-not-this-projects-key-77"
    with Sink(IterableDouble(KEY)) as sink:
        connect(workspace_config, sink.url, apiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track"},
            {"type": "alias", "userId": "new@example.com", "previousId": "old@example.com",
             "messageId": "m-alias"},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        paths = sorted(a.path for a in sink.arrivals)  # each once: permanent, not retried
    assert paths == ["/api/events/trackBulk", "/api/users/updateEmail"]
    for failed in listing.values():
        assert failed["status_code"] == 401 and failed["attempts"] == 1
        assert failed["error"] == "HTTP 401: BadApiKey: Invalid API key"
        assert failed["request"]["headers"]["api_key"] == "****"
    # Each job shows its own request (the event it was, before its batch combined it).
    assert listing["m-track"]["request"]["url"].endswith("/api/events/track")
    assert listing["m-alias"]["request"]["url"].endswith("/api/users/updateEmail")
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_what_iterable_refuses_in_a_bulk_request_fails_alone_and_is_not_sent_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = IterableDouble(KEY, forgotten=frozenset({"gone@example.com"}),
                            disallowed=frozenset({"Blocked"}))  # fmt: skip
    users = ["ada@example.com", "gone@example.com", "cy@example.com"]
    tracks = [
        ("ada@example.com", "Viewed"),
        ("not-an-email", "Viewed"),
        ("cy@example.com", "Blocked"),
    ]
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": f"user-{n}", "messageId": f"m-user-{n}",
             "traits": {"email": email}} for n, email in enumerate(users)
        ] + [
            {"type": "track", "userId": f"buyer-{n}", "event": name, "messageId": f"m-event-{n}",
             "properties": {"email": email}} for n, (email, name) in enumerate(tracks)
        ])  # fmt: skip
        failed = {f["message_id"]: f for f in wait_for_failed(workspace_config, 3)}
        states = attempts(workspace_config, 3)
    assert sorted(double.bulk) == [("events/trackBulk", 3), ("users/bulkUpdate", 3)]
    assert sorted(u["email"] for u in double.updates) == ["ada@example.com", "cy@example.com"]
    assert [e["dataFields"]["email"] for e in double.events] == ["ada@example.com"]
    assert set(failed) == {"m-user-1", "m-event-1", "m-event-2"}
    assert all(f["status_code"] == 200 and f["attempts"] == 1 for f in failed.values())
    assert failed["m-user-1"]["error"] == (
        "HTTP 200: email 'gone@example.com' in failedUpdates.forgottenEmails"
    )
    assert failed["m-event-1"]["error"] == "HTTP 200: email 'not-an-email' in invalidEmails"
    assert failed["m-event-2"]["error"] == "HTTP 200: eventName 'Blocked' in disallowedEventNames"
    assert states["delivered"] == 3 and states["aborted"] == 3 and states["retry"] == 0, states
    assert len(failed_jobs(workspace_config)) == 3


def test_events_sent_again_carry_the_same_id_so_iterable_updates_them(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """A throttled events request is sent again with each event's id, its messageId: Iterable
    (and the double) update the event they have rather than adding one."""
    double = IterableDouble(KEY)
    double.throttle_next(1)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Viewed", "messageId": f"m-{n}",
             "timestamp": STAMP, "properties": {"n": n}}
            for n in range(3)
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 3)
        states = attempts(workspace_config, 3)
        arrivals = list(sink.arrivals)

    copies = [e for a in arrivals for e in a.json().get("events", [a.json()])]
    seen = [(e["dataFields"]["n"], e["id"]) for e in copies]
    assert len(seen) > 3 and set(seen) == {(0, "m-0"), (1, "m-1"), (2, "m-2")}, seen
    assert sorted(e["id"] for e in double.events) == ["m-0", "m-1", "m-2"]
    assert states["delivered"] == 3 and states["retry"] >= 1, states
