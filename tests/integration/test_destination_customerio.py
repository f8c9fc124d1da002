"""Customer.io end to end: gateway → worker → a double of Customer.io's Track API
(tests.vendors.customerio) reached through the destination's `endpoint` setting, in both
request shapes (`trackApi` v1, the default, and v2 batches)."""

import base64
import time

from tests.delivery import (
    assert_aborted_masked,
    attempts,
    connect_destinations,
    post,
    sluice,
    wait_for_failed,
    wait_until,
)
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.customerio import CustomerIODouble

SITE = "site-5d1c0a"
KEY = "cio-track-key-8e41f2a7b9"
AUTH = "Basic " + base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
STAMP = "2026-01-15T10:00:00.250Z"
SECONDS = 1768471200


def connect(database_url: str, url: str, **config: str) -> None:
    settings = {"siteID": SITE, "apiKey": KEY, "datacenter": "EU", "endpoint": url, **config}
    connect_destinations(database_url, ("cio", "customerio", settings))


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = CustomerIODouble(SITE, KEY)
    double.throttle_next(2)
    device = {"token": "tok-a", "type": "iOS", "model": "iPhone15,2"}
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "anonymousId": "anon-1", "timestamp": STAMP,
             "traits": {"email": "ada@example.com", "plan": "pro", "createdAt": STAMP,
                        "address": {"city": "Paris", "country": "FR"}}},
            {"type": "track", "userId": "user-1", "event": "Order Completed", "timestamp": STAMP,
             "properties": {"revenue": 12.5}},
            {"type": "track", "anonymousId": "anon-9", "event": "Viewed Pricing " + "x" * 120},
            {"type": "page", "userId": "user-1", "name": "Pricing",
             "properties": {"url": "https://example.com/pricing"}},
            {"type": "screen", "anonymousId": "anon-9", "name": "Home"},
            {"type": "track", "userId": "user-2", "event": "Application Installed",
             "timestamp": STAMP, "context": {"device": device}, "properties": {"build": 7}},
            {"type": "track", "userId": "user-2", "event": "Application Uninstalled",
             "context": {"device": {"token": "tok-old"}}},
            {"type": "alias", "userId": "user-3", "previousId": "anon-9"},
            {"type": "group", "userId": "user-1", "groupId": "acme",
             "traits": {"name": "Acme", "objectTypeId": "2", "action": "identify"}},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 4 and double.merges and double.objects)
        wait_until(lambda: any(a.method == "DELETE" for a in sink.delivered))
        time.sleep(0.3)  # anything sent twice would arrive now

    assert double.people == {"user-1": {
        "email": "ada@example.com", "plan": "pro", "city": "Paris", "country": "FR",
        "created_at": SECONDS, "_timestamp": SECONDS, "anonymous_id": "anon-1"}}  # fmt: skip
    events = {e["name"]: e for e in double.events}
    assert all(len(e.pop("id")) == 26 for e in double.events)  # a ULID each (the double checks)
    assert events["Order Completed"] == {"person": "user-1", "name": "Order Completed",
                                         "type": "event", "data": {"revenue": 12.5},
                                         "timestamp": SECONDS}  # fmt: skip
    anonymous = next(name for name in events if name.startswith("Viewed Pricing"))
    assert len(anonymous) == 100 and events[anonymous]["anonymous_id"] == "anon-9"
    assert events["Pricing"]["type"] == "page" and events["Pricing"]["person"] == "user-1"
    assert events["Viewed Home Screen"]["anonymous_id"] == "anon-9"
    assert double.devices == {("user-2", "tok-a"): {"build": 7, "id": "tok-a", "platform": "ios",
                                                    "last_used": SECONDS}}  # fmt: skip
    assert double.merges == [("user-3", "anon-9")]
    assert double.objects == {("2", "acme"): {"name": "Acme", "objectTypeId": "2"}}
    assert double.relationships == {("2", "acme"): ["user-1"]}
    paths = {(a.method, a.path) for a in sink.delivered}
    assert ("DELETE", "/api/v1/customers/user-2/devices/tok-old") in paths
    assert ("POST", "/api/v2/batch") in paths
    assert {a.header("authorization") for a in sink.arrivals} == {AUTH}
    states = attempts(workspace_config, 9)
    assert states["delivered"] == 9 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_refusals_abort_visibly_with_the_secret_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "not-the-track-key-3c9a"
    with Sink(CustomerIODouble(SITE, KEY)) as sink:
        connect(workspace_config, sink.url, apiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track"},
        ])  # fmt: skip
        sent = base64.b64encode(f"{SITE}:{wrong}".encode()).decode()
        failed = assert_aborted_masked(workspace_config, sink, wrong, sent)
    assert failed["message_id"] == "m-track" and failed["status_code"] == 401
    assert failed["error"] == "HTTP 401: Unauthorized"
    assert failed["request"]["headers"]["Authorization"] == "Basic ****"


def test_a_value_customer_io_refuses_fails_alone(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """v1: a refused call is aborted with Customer.io's words."""
    double = CustomerIODouble(SITE, KEY)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-long",
             "traits": {"bio": "b" * 1500}},
            {"type": "identify", "userId": "user-2", "messageId": "m-ok", "traits": {"plan": "x"}},
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: "user-2" in double.people)
        assert len(sink.arrivals) == 2
    assert failed["message_id"] == "m-long" and failed["status_code"] == 400
    assert failed["error"] == "HTTP 400: attributes.bio: values may be 1000 bytes at most"
    assert double.people == {"user-2": {"plan": "x"}}


def test_batch_partial_success_fails_only_the_refused_events(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """v2: a 207 names the refused actions; the others were applied, and the batch is not sent
    again."""
    double = CustomerIODouble(SITE, KEY)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, trackApi="v2")
        post(gateway, [
            {"type": "identify", "userId": "user-0", "messageId": "m-0", "traits": {"plan": "a"}},
            {"type": "identify", "userId": "user-1", "messageId": "m-1",
             "traits": {"bio": "b" * 1500}},
            {"type": "track", "anonymousId": "anon-2", "messageId": "m-2", "event": "Viewed",
             "properties": {"page": 2}},
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: double.events and double.people)
        time.sleep(0.5)  # anything sent again would arrive now
        arrivals = list(sink.arrivals)

    # However the router read them, each event travelled once, in a batch.
    assert sum(double.batches) == 3 and len(double.batches) == len(arrivals)
    assert {a.path for a in arrivals} == {"/api/v2/batch"}
    assert {a.header("authorization") for a in arrivals} == {AUTH}
    assert {a.header("content-type") for a in arrivals} == {"application/json"}
    sent = [(action["action"], *action["identifiers"].values())
            for a in arrivals for action in a.json()["batch"]]  # fmt: skip
    assert sorted(sent) == [("event", "anon-2"), ("identify", "user-0"), ("identify", "user-1")]
    assert double.people == {"user-0": {"plan": "a"}}
    [event] = double.events
    assert len(event.pop("id")) == 26  # its dedup ULID
    assert event == {"anonymous_id": "anon-2", "name": "Viewed", "type": "event",
                     "data": {"page": 2}}  # fmt: skip
    assert failed["message_id"] == "m-1" and failed["status_code"] == 207
    assert failed["attempts"] == 1
    assert failed["error"] == (
        "HTTP 207: reason: invalid, field: attributes.bio, message: values may be 1000 bytes"
        " at most"
    )
    states = attempts(workspace_config, 2)
    assert states == {"delivered": 2, "aborted": 1}, states


def test_events_sent_again_carry_the_same_ulid_so_customer_io_ignores_the_copy(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """A throttled batch is sent again with each event's dedup id unchanged (a ULID of the
    event's time and messageId), so Customer.io would ignore a copy it already had."""
    double = CustomerIODouble(SITE, KEY)
    double.throttle_next(1)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, trackApi="v2")
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": f"Viewed {n}", "messageId": f"m-{n}",
             "timestamp": STAMP}
            for n in range(3)
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 3)
        states = attempts(workspace_config, 3)
        arrivals = list(sink.arrivals)

    copies = [action for a in arrivals for action in a.json()["batch"]]
    ids: dict[str, set[str]] = {}
    for action in copies:
        ids.setdefault(action["name"], set()).add(action["id"])
    assert len(copies) > 3 and all(len(found) == 1 for found in ids.values()), ids
    assert double.ids == set.union(*ids.values()) and len(double.ids) == 3
    assert all(i.startswith("01KF0HJ0FT") for i in double.ids)  # the event's time, 10:00:00.250
    assert double.repeats == 0 and states["delivered"] == 3, states
