"""PostHog end to end: gateway → worker → a double of PostHog's capture API
(tests.vendors.posthog) reached through the destination's `endpoint` setting."""

import time
from collections import Counter
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
from tests.vendors.posthog import PostHogDouble

TOKEN = "phc_7Qm2vXk9TfR4sLw1bNc8Yd3Hj6Ge0Pa5"
STAMP = "2026-01-15T10:00:00.250Z"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.109 Safari/537.36"
)


def connect(database_url: str, url: str, **config: Any) -> None:
    settings = {"teamApiKey": TOKEN, "endpoint": url, "useV2Group": True, **config}
    connect_destinations(database_url, ("ph", "posthog", settings))


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = PostHogDouble(TOKEN)
    double.throttle_next(2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "anonymousId": "anon-1",
             "messageId": "m-identify", "timestamp": STAMP,
             "traits": {"email": "ada@example.com", "plan": "pro"}},
            {"type": "track", "userId": "user-1", "event": "Order Completed",
             "messageId": "m-order", "timestamp": STAMP, "properties": {"revenue": 12.5},
             "context": {"ip": "10.1.2.3", "traits": {"plan": "pro"}}},
            {"type": "page", "anonymousId": "anon-9", "name": "Pricing", "messageId": "m-page",
             "channel": "web", "context": {"userAgent": CHROME,
                                           "page": {"url": "https://shop.example.com:8443/p"}}},
            {"type": "screen", "userId": "user-2", "name": "Home", "messageId": "m-screen"},
            {"type": "group", "userId": "user-2", "groupId": "g1", "messageId": "m-group",
             "traits": {"groupType": "company", "name": "Acme", "employees": 40}},
            {"type": "alias", "userId": "user-3", "previousId": "anon-9", "messageId": "m-alias"},
        ])  # fmt: skip
        wait_until(lambda: len(double.events) == 6)
        time.sleep(0.3)  # anything sent twice would arrive now

    events = {e["event"]: e for e in double.events}
    assert set(events) == {
        "$identify", "Order Completed", "$pageview", "$screen", "$groupidentify",
        "$create_alias",
    }  # fmt: skip
    identify = events["$identify"]
    assert (identify["type"], identify["distinct_id"]) == ("identify", "user-1")
    assert identify["$set"] == {"email": "ada@example.com", "plan": "pro"}
    assert identify["properties"]["$anon_distinct_id"] == "anon-1"
    assert identify["timestamp"] == STAMP and identify["messageId"] == "m-identify"
    order = events["Order Completed"]
    assert (order["type"], order["distinct_id"]) == ("capture", "user-1")
    assert order["properties"]["revenue"] == 12.5 and order["properties"]["$ip"] == "10.1.2.3"
    assert order["properties"]["$set"] == {"plan": "pro"}
    page = events["$pageview"]
    assert (page["type"], page["distinct_id"], page["name"]) == ("page", "anon-9", "Pricing")
    assert page["properties"]["$host"] == "shop.example.com:8443"
    assert page["properties"]["$browser"] == "Chrome"
    assert events["$screen"]["properties"]["$screen_name"] == "Home"
    group = events["$groupidentify"]["properties"]
    assert (group["$group_type"], group["$group_key"]) == ("company", "g1")
    assert group["$group_set"] == {"name": "Acme", "employees": 40}
    assert group["$groups"] == {"company": "g1"}
    alias = events["$create_alias"]
    assert alias["properties"]["distinct_id"] == "user-3"
    assert alias["properties"]["alias"] == "anon-9"
    for arrival in sink.arrivals:
        assert arrival.json()["api_key"] == TOKEN and not arrival.header("authorization")
        assert all("api_key" not in e for e in arrival.json()["batch"])
    assert Counter(a.path for a in sink.arrivals) == {"/batch": len(sink.arrivals)}
    states = attempts(workspace_config, 6)
    assert states["delivered"] == 6 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""
    # The throttled events were sent again, each copy with the same uuid: PostHog counts the
    # event once (the double drops a copy it has, as PostHog's dedup does).
    copies = [e for arrival in sink.arrivals for e in arrival.json()["batch"]]
    uuids: dict[str, set[str]] = {}
    for copy in copies:
        uuids.setdefault(copy["event"], set()).add(copy["uuid"])
    assert len(copies) > 6 and all(len(u) == 1 for u in uuids.values()), uuids
    assert len(set.union(*uuids.values())) == 6
    assert {e["uuid"] for e in double.events} == set.union(*uuids.values())


def test_a_wrong_project_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "phc_NotThisProjectKey0000000000000000"
    double = PostHogDouble(TOKEN)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, teamApiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track"},
            {"type": "identify", "userId": "user-2", "messageId": "m-identify",
             "traits": {"plan": "pro"}},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        time.sleep(0.3)  # a retry would arrive now
        sent = len(sink.arrivals)
    assert sent == len(double.requests) and sum(double.requests) == 2  # permanent: not retried
    assert double.events == []
    for failed in listing.values():
        assert failed["status_code"] == 401 and failed["attempts"] == 1
        assert failed["error"] == "HTTP 401: API key is not valid: unknown project"
        assert failed["request"]["body"]["api_key"] == "****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def _refused_whole_then_alone(batches: list[list[Any]], bad: str) -> None:
    """The bad event's requests: any carrying other events too (refused whole), then one of its
    own (refused for good), and none after it. The worker may read the events at once or in
    several goes: either way every request is accounted for."""
    with_bad = [batch for batch in batches if bad in batch]
    assert with_bad and with_bad[-1] == [bad], batches
    assert all(len(batch) > 1 for batch in with_bad[:-1]), batches


def _accepted_once_each(double: PostHogDouble, *message_ids: str) -> None:
    """The good events were accepted once each, in however many requests it took."""
    assert sorted(e["messageId"] for e in double.events) == sorted(message_ids)
    accepted = [b for b in double.batches if set(b) <= set(message_ids)]
    assert sorted(m for b in accepted for m in b) == sorted(message_ids), double.batches


def test_an_event_too_large_sinks_its_batch_which_is_then_sent_event_by_event(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """PostHog has no partial success: one event over its size limit refuses the request. The
    router sends the batch's events again one by one; only the large one fails."""
    double = PostHogDouble(TOKEN, max_event_bytes=4000)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "track", "userId": f"user-{n}", "event": "Viewed", "messageId": f"m-{n}",
             "properties": {"notes": "x" * (6000 if n == 1 else 10)}}
            for n in range(3)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 2)
        time.sleep(0.5)  # anything sent again would arrive now

    _refused_whole_then_alone(double.batches, "m-1")
    _accepted_once_each(double, "m-0", "m-2")
    assert failed["message_id"] == "m-1" and failed["status_code"] == 413
    assert failed["error"].startswith("HTTP 413")
    states = attempts(workspace_config, 2)
    assert states["delivered"] == 2 and states["aborted"] == 1, states
    assert TOKEN not in sluice(workspace_config, "failed", "list", "--json")


def test_an_event_posthog_finds_invalid_fails_alone_and_the_rest_of_its_batch_arrives(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """A 400 refuses a whole batch of up to 1,000 events for one of them, naming none: the
    batch is sent again event by event (`split_on`), and only the invalid event fails, with
    PostHog's words."""
    double = PostHogDouble(TOKEN, invalid_names=frozenset({"Broken"}))
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "track", "userId": f"user-{n}", "messageId": f"m-{n}",
             "event": "Broken" if n == 1 else "Viewed", "properties": {"n": n}}
            for n in range(4)
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        wait_until(lambda: len(double.events) == 3)
        time.sleep(0.5)  # anything sent again would arrive now

    _refused_whole_then_alone(double.batches, "m-1")
    _accepted_once_each(double, "m-0", "m-2", "m-3")
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["error"] == "HTTP 400: invalid event: 'Broken' cannot be ingested"
    states = attempts(workspace_config, 3)
    assert states["delivered"] == 3 and states["aborted"] == 1, states
    assert TOKEN not in sluice(workspace_config, "failed", "list", "--json")
