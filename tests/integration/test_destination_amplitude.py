"""Amplitude end to end: gateway → worker → a double of Amplitude's APIs (tests.vendors.amplitude)
reached through the destination's `endpoint` setting."""

import time
from collections import Counter, defaultdict
from typing import Any

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
from tests.vendors.amplitude import MAX_BYTES, MAX_EVENTS, AmplitudeDouble

API_KEY = "amp-test-key-0f3a9c"


def connect(database_url: str, url: str, api_key: str = API_KEY) -> None:
    config = {"apiKey": api_key, "endpoint": url, "groupTypeTrait": "kind",
              "groupValueTrait": "title"}  # fmt: skip
    connect_destinations(database_url, ("amp", "amplitude", config))


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = AmplitudeDouble(API_KEY)
    double.throttle_next(2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "messageId": "m-identify",
             "traits": {"plan": "pro", "city": "Lyon"}},
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "properties": {"revenue": 12.50, "currency": "EUR"},
             "context": {"ip": "10.1.2.3", "locale": "fr-FR"}},
            {"type": "page", "anonymousId": "anon-77", "name": "Pricing", "messageId": "m-page"},
            {"type": "screen", "userId": "user-2", "name": "Home", "messageId": "m-screen"},
            {"type": "group", "userId": "user-2", "groupId": "g1", "messageId": "m-group",
             "traits": {"kind": "Company", "title": "Acme", "employees": 40}},
            {"type": "alias", "userId": "user-3", "previousId": "anon-77", "messageId": "m-alias"},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 5 and double.groups and double.mappings)
        time.sleep(0.3)  # anything sent twice would arrive now

    by_type = {e["event_type"]: e for e in double.events}
    assert set(by_type) == {"$identify", "Order Completed", "Viewed Pricing Page",
                            "Viewed Home Screen"}  # fmt: skip
    assert sorted(double.insert_ids()) == ["m-identify", "m-order", "m-page", "m-screen"]
    order = by_type["Order Completed"]
    assert (order["user_id"], order["revenue"], order["price"]) == ("user-1", 12.5, 12.5)
    assert order["ip"] == "10.1.2.3" and order["language"] == "fr-FR"
    assert order["event_properties"] == {"currency": "EUR"}
    assert by_type["Viewed Pricing Page"]["device_id"] == "anon-77"
    member = [e for e in double.events if e.get("groups")]
    assert [m["groups"] for m in member] == [{"Company": "Acme"}]
    assert double.groups == [{"group_type": "Company", "group_value": "Acme",
                              "group_properties": {"kind": "Company", "title": "Acme",
                                                   "employees": 40}}]  # fmt: skip
    assert double.mappings == [{"user_id": "anon-77", "global_user_id": "user-3"}]
    states = attempts(workspace_config, 7)
    assert states["delivered"] == 7 and states["retry"] >= 2, states


def test_a_wrong_api_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "not-the-project-key-4d2"
    with Sink(AmplitudeDouble(API_KEY)) as sink:
        connect(workspace_config, sink.url, api_key=wrong)
        post(gateway, [{"type": "track", "userId": "user-1", "event": "Signed Up",
                        "messageId": "m-1"}])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        assert len(sink.arrivals) == 1  # permanent: not retried
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["attempts"] == 1 and failed["error"] == "HTTP 400"
    assert "Invalid API key" in failed["response"]
    assert failed["request"]["body"]["api_key"] == "****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_events_amplitude_refuses_fail_alone_and_the_rest_of_their_batch_arrives(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    def bad_time(event: dict[str, Any]) -> str | None:
        return "time" if event.get("event_type") == "Broken" else None

    double = AmplitudeDouble(API_KEY, invalid=bad_time)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        events = [
            {"type": "track", "userId": f"user-{n}", "event": "Broken" if n == 3 else "Fine",
             "messageId": f"m-{n}"}
            for n in range(20)
        ]  # fmt: skip
        post(gateway, events)
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 19)
        time.sleep(0.3)
        assert sink.arrivals  # at least the refused batch
    assert failed["message_id"] == "m-3" and failed["status_code"] == 400
    assert failed["error"] == "HTTP 400: Invalid field values on some events: time invalid"
    assert sorted(double.insert_ids()) == sorted(f"m-{n}" for n in range(20) if n != 3)


def test_a_burst_travels_in_few_requests_within_the_limits_each_event_once(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    users, per_user = 1000, 5
    double = AmplitudeDouble(API_KEY)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        events: list[dict[str, Any]] = [
            {"type": "track", "userId": f"user-{u:04}", "event": "Step", "messageId": f"{u}-{s}",
             "properties": {"seq": s, "note": "x" * 100}}
            for s in range(per_user) for u in range(users)
        ]  # fmt: skip
        for start in range(0, len(events), 100):
            post(gateway, events[start : start + 100])
        wait_until(lambda: len(double.events) >= users * per_user, timeout=60)
        time.sleep(0.5)
        arrivals = [a for a in sink.arrivals if a.path == "/2/httpapi"]

    ids = double.insert_ids()
    assert len(ids) == users * per_user and Counter(ids).most_common(1)[0][1] == 1
    assert sorted(ids) == sorted(e["messageId"] for e in events)
    assert all(len(a.body) <= MAX_BYTES for a in arrivals)
    assert max(double.requests) <= MAX_EVENTS and max(double.requests) > 100
    assert len(arrivals) < users * per_user // 20, len(arrivals)
    seen: dict[str, list[int]] = defaultdict(list)
    for event in double.events:
        seen[event["user_id"]].append(event["event_properties"]["seq"])
    assert all(order == list(range(per_user)) for order in seen.values())
