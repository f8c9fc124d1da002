"""Braze end to end: gateway → worker → a double of Braze's REST API (tests.vendors.braze)
reached through the destination's `endpoint` setting."""

from typing import Any

from tests.delivery import (
    FAST_RETRIES,
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
from tests.vendors.braze import BrazeDouble

KEY = "braze-rest-key-7d1e40b2c9"
STAMP = "2026-01-15T10:00:00.250Z"


# Retries fast, but waits as long as Braze asks (up to 5 s), one request at a time.
PAUSABLE = "{concurrency: 1, min_backoff_seconds: 0.1, max_backoff_seconds: 5}"


def connect(database_url: str, url: str, delivery: str = FAST_RETRIES, **config: Any) -> None:
    settings = {"restApiKey": KEY, "dataCenter": "EU-01", "endpoint": url, **config}
    connect_destinations(database_url, ("braze", "braze", settings), delivery=delivery)


EVERY_CALL: list[dict[str, Any]] = [
    {"type": "identify", "userId": "user-1", "anonymousId": "anon-1", "messageId": "m-identify",
     "timestamp": STAMP, "traits": {"email": "Ada@Example.com", "firstName": "Ada",
                                    "gender": "female", "plan": "pro"}},
    {"type": "identify", "anonymousId": "anon-2", "messageId": "m-anonymous",
     "timestamp": STAMP, "traits": {"plan": "free"}},
    {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track",
     "timestamp": STAMP, "properties": {"plan": "pro", "time": "dropped"},
     "context": {"traits": {"plan": "pro"}}},
    {"type": "track", "userId": "user-3", "event": "Order Completed", "messageId": "m-order",
     "timestamp": STAMP, "properties": {"currency": "EUR", "products": [
         {"product_id": "p-1", "price": 12.5, "quantity": 2},
         {"sku": "p-2", "price": "3", "quantity": "1"}]}},
    {"type": "page", "userId": "user-4", "name": "Pricing", "messageId": "m-page",
     "timestamp": STAMP, "properties": {"url": "https://example.com/pricing"}},
    {"type": "screen", "anonymousId": "anon-5", "messageId": "m-screen", "timestamp": STAMP},
    {"type": "group", "userId": "user-5", "groupId": "g-1", "messageId": "m-group"},
    {"type": "alias", "userId": "user-6", "previousId": "old-6", "messageId": "m-alias"},
]  # fmt: skip


def test_every_call_arrives_shaped_and_authenticated_after_throttling(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = BrazeDouble(KEY)
    double.throttle_next(2)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, EVERY_CALL)
        wait_until(lambda: len(double.attributes) == 4 and len(double.events) == 3
                   and len(double.purchases) == 2 and double.merges)  # fmt: skip
        states = attempts(workspace_config, 8)
        arrivals = list(sink.arrivals)

    attributes = {a.get("external_id") or a["user_alias"]["alias_name"]: a
                  for a in double.attributes}  # fmt: skip
    user_1 = [a for a in double.attributes if a.get("external_id") == "user-1"]
    assert {"external_id": "user-1", "email": "ada@example.com", "first_name": "Ada",
            "gender": "F", "plan": "pro"} in user_1  # fmt: skip
    assert {"external_id": "user-1", "plan": "pro"} in user_1  # (the track's context traits)
    assert attributes["anon-2"] == {"plan": "free", "_update_existing_only": False,
                                    "user_alias": {"alias_name": "anon-2",
                                                   "alias_label": "rudder_id"}}  # fmt: skip
    assert attributes["user-5"] == {"ab_rudder_group_g-1": True, "external_id": "user-5"}
    events = {e["name"]: e for e in double.events}
    assert events["Signed Up"] == {
        "name": "Signed Up", "time": STAMP, "properties": {"plan": "pro"}, "external_id": "user-1"
    }  # fmt: skip
    assert events["Pricing"]["properties"] == {"url": "https://example.com/pricing"}
    assert events["Screen Viewed"]["user_alias"]["alias_name"] == "anon-5"
    assert double.purchases == [
        {"product_id": "p-1", "price": 12.5, "currency": "EUR", "quantity": 2, "time": STAMP,
         "external_id": "user-3"},
        {"product_id": "p-2", "price": 3, "currency": "EUR", "quantity": 1, "time": STAMP,
         "external_id": "user-3"},
    ]  # fmt: skip
    assert double.merges == [{"identifier_to_merge": {"external_id": "old-6"},
                              "identifier_to_keep": {"external_id": "user-6"}}]  # fmt: skip
    # The anonymous profile is merged into user-1's once, before user-1's attributes arrive
    # (the throttled attempt's merge answer is reused by the retry).
    assert double.identified == [{"external_id": "user-1", "user_alias": {
        "alias_name": "anon-1", "alias_label": "rudder_id"}}]  # fmt: skip
    merged = [a.at for a in arrivals if a.path == "/users/identify"]
    tracked = [a.at for a in arrivals if a.path == "/users/track" and b"ada@example.com" in a.body]
    assert len(merged) == 1 and tracked and merged[0] <= min(tracked)
    assert all(a.header("Authorization") == f"Bearer {KEY}" for a in arrivals)
    assert not [a for a in arrivals if a.query]  # the merge hints never reach Braze
    assert states["delivered"] == 8 and states["retry"] >= 2, states
    assert sluice(workspace_config, "failed", "list", "--json") == ""


def test_a_wrong_key_aborts_visibly_with_the_key_masked(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    wrong = "braze-not-this-workspaces-key-31"
    with Sink(BrazeDouble(KEY)) as sink:
        connect(workspace_config, sink.url, restApiKey=wrong)
        post(gateway, [
            {"type": "track", "userId": "user-1", "event": "Signed Up", "messageId": "m-track",
             "timestamp": STAMP},
            {"type": "alias", "userId": "user-6", "previousId": "old-6", "messageId": "m-alias"},
        ])  # fmt: skip
        listing = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        paths = sorted(a.path for a in sink.arrivals)  # each once: permanent, not retried
    assert paths == ["/users/merge", "/users/track"]
    for failed in listing.values():
        assert failed["status_code"] == 401 and failed["attempts"] == 1
        assert failed["error"] == "HTTP 401: Invalid API key"
        assert failed["request"]["headers"]["Authorization"] == "Bearer ****"
    table = sluice(workspace_config, "failed", "list", "--json")
    assert wrong not in table and "****" in table


def test_what_braze_refuses_in_a_batch_fails_alone_and_is_not_sent_again(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = BrazeDouble(KEY, refused_events=frozenset({"Blocked"}))
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "track", "userId": "user-a", "event": "Viewed", "messageId": "m-a",
             "timestamp": STAMP},
            {"type": "track", "userId": "user-b", "event": "Blocked", "messageId": "m-b",
             "timestamp": STAMP},
            {"type": "track", "userId": "user-c", "event": "Order Completed", "messageId": "m-c",
             "timestamp": STAMP, "properties": {"products": [
                 {"product_id": "p-1", "price": 5, "quantity": 1, "currency": "EUR"},
                 {"product_id": "p-2", "price": 7, "quantity": 1, "currency": "euro"}]}},
            {"type": "identify", "userId": "user-d", "messageId": "m-d",
             "traits": {"plan": "pro"}},
        ])  # fmt: skip
        failed = {f["message_id"]: f for f in wait_for_failed(workspace_config, 2)}
        states = attempts(workspace_config, 2)
        arrivals = [a for a in sink.arrivals if a.path == "/users/track"]
    # One request carried the four events, and it was not sent again.
    assert len(arrivals) == 1
    assert double.tracks == [{"attributes": 1, "events": 2, "purchases": 2}]
    assert [e["name"] for e in double.events] == ["Viewed"]
    assert [p["product_id"] for p in double.purchases] == ["p-1"]
    assert [a["external_id"] for a in double.attributes] == ["user-d"]
    assert set(failed) == {"m-b", "m-c"}
    assert all(f["status_code"] == 201 and f["attempts"] == 1 for f in failed.values())
    assert failed["m-b"]["error"] == (
        "HTTP 201: Braze refused events[0]: event name 'Blocked' is blocklisted"
    )
    assert failed["m-c"]["error"] == (
        "HTTP 201: Braze refused purchases[1]: 'currency' must be a valid ISO 4217 currency "
        "code (its 1 other object(s) were processed)"
    )
    assert states["delivered"] == 2 and states["aborted"] == 2 and states["retry"] == 0, states


def test_a_failed_alias_merge_does_not_fail_the_identify(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    double = BrazeDouble(KEY, identify_status=500)
    with Sink(double) as sink:
        connect(workspace_config, sink.url)
        post(gateway, [
            {"type": "identify", "userId": "user-1", "anonymousId": "anon-1",
             "messageId": "m-identify", "traits": {"plan": "pro"}},
        ])  # fmt: skip
        wait_until(lambda: double.attributes)
        states = attempts(workspace_config, 1)
        paths = [a.path for a in sink.arrivals]
    assert paths == ["/users/identify", "/users/track"]
    assert double.identified == []
    assert double.attributes == [{"plan": "pro", "external_id": "user-1"}]
    assert states["delivered"] == 1 and states["retry"] == 0, states
    assert failed_jobs(workspace_config) == []


def test_a_429_pauses_braze_for_the_time_braze_names(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """Braze says when to come back in `X-Ratelimit-Retry-After` (no `Retry-After`): until
    then nothing goes to it, not even another user's event to another endpoint."""
    double = BrazeDouble(KEY, retry_after=2)
    double.throttle_next(1)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, delivery=PAUSABLE)
        post(gateway, [{"type": "track", "userId": "user-a", "event": "Viewed",
                        "messageId": "m-a", "timestamp": STAMP}])  # fmt: skip
        wait_until(lambda: sink.arrivals)
        post(gateway, [{"type": "alias", "userId": "user-b", "previousId": "old-b",
                        "messageId": "m-b"}])  # fmt: skip
        wait_until(lambda: double.events and double.merges)
        throttled, *later = sink.arrivals
    assert throttled.path == "/users/track"
    assert sorted(a.path for a in later) == ["/users/merge", "/users/track"]
    assert all(a.at - throttled.at >= 1.9 for a in later), [a.at - throttled.at for a in later]


def test_a_batch_braze_refuses_whole_is_sent_again_job_by_job(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    """One phone Braze cannot read makes it refuse the subscriptions of the whole request
    (400, naming none): each job is sent alone, and only the bad one fails."""
    double = BrazeDouble(KEY)
    with Sink(double) as sink:
        connect(workspace_config, sink.url, enableSubscriptionGroupInGroupCall=True)
        post(gateway, [
            {"type": "group", "userId": f"user-{n}", "groupId": "g-1", "messageId": f"m-{n}",
             "traits": {"subscriptionState": "subscribed", "phone": phone}}
            for n, phone in enumerate(["+14155550100", "555 0101"])
        ])  # fmt: skip
        [failed] = wait_for_failed(workspace_config, 1)
        states = attempts(workspace_config, 1)
        sent = [a.json()["subscription_groups"] for a in sink.arrivals]
    assert sent[0] == [{"subscription_group_id": "g-1", "subscription_state": "subscribed",
                        "external_ids": ["user-0", "user-1"],
                        "phones": ["+14155550100", "555 0101"]}]  # fmt: skip
    assert len(sent) == 3 and all(len(groups[0]["phones"]) == 1 for groups in sent[1:])
    assert double.subscriptions == [{
        "subscription_group_id": "g-1", "subscription_state": "subscribed",
        "external_ids": ["user-0"], "phones": ["+14155550100"]}]  # fmt: skip
    assert failed["message_id"] == "m-1" and failed["status_code"] == 400
    assert failed["error"] == "HTTP 400: Invalid phone number: phones must be in E.164 format"
    assert states["delivered"] == 1 and states["aborted"] == 1, states
